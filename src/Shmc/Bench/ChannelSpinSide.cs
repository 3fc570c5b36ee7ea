using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Shmc.Bench;

/// <summary>The measuring side of a spinning ping-pong over any channel: TryWrite the ping, poll TryRead for the pong with one PAUSE per miss.</summary>
internal sealed class ChannelSpinSide(ChannelWriter<BenchMessage> ping, ChannelReader<BenchMessage> pong) : IPingPong
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool RoundTrip(long sequence, long hardDeadline)
    {
        if (!ping.TryWrite(new BenchMessage(sequence, 0)))
        {
            throw new InvalidOperationException("the ping channel is full");
        }

        int polls = 0;
        BenchMessage back;
        while (!pong.TryRead(out back))
        {
            SpinPause.Once();
            if ((++polls & 1023) == 0 && Stopwatch.GetTimestamp() > hardDeadline)
            {
                return false;
            }
        }

        InProcessChannel.Check(back, sequence);
        return true;
    }
}
