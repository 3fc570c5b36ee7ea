using System.Globalization;
using SharedMemChannels.Rings;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for rings and event counts. Arguments are positional:
/// <c>ring-claim SEGMENT OFFSET LENGTH write|read</c> claims an MPMC cell and stops (to be killed there);
/// <c>ec-pong SEGMENT OFFSET ROUNDS</c> answers a ping-pong over two event counts.
/// </summary>
internal static class RingRoles
{
    /// <summary>Where the ping-pong's words sit in its block: the counter and two event counts, a line each.</summary>
    public const int PongCounter = 0;
    public const int PingEvent = 128;
    public const int PongEvent = 256;

    public static int Run(string role, string[] args) => role switch
    {
        "ring-claim" => Claim(args),
        "ec-pong" => Pong(args),
        _ => 2,
    };

    private static long Long(string text) => long.Parse(text, CultureInfo.InvariantCulture);

    private static int Claim(string[] args)
    {
        using SharedSegment segment = SharedSegment.Open(args[0]);
        MpmcRing<long> ring = MpmcRing<long>.Attach(segment.Memory, Long(args[1]), Long(args[2]), segment.Processes, segment.Owner);
        long pos = args[3] == "write" ? ring.ClaimWriteForTest() : ring.ClaimReadForTest();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"claimed pos={pos}"));
        using var never = new ManualResetEventSlim();
        never.Wait();
        return 3;
    }

    /// <summary>For each round r: waits until the counter is 2r + 1, makes it 2r + 2, signals the pong event.</summary>
    private static int Pong(string[] args)
    {
        using SharedSegment segment = SharedSegment.Open(args[0]);
        long offset = Long(args[1]);
        long rounds = Long(args[2]);
        var ping = new EventCount(segment.Memory, offset + PingEvent, offset + PingEvent + 4);
        var pong = new EventCount(segment.Memory, offset + PongEvent, offset + PongEvent + 4);
        ref int counter = ref segment.Memory.Int32(offset + PongCounter);
        Console.WriteLine("ready");
        for (int r = 0; r < rounds; r++)
        {
            int wanted = (2 * r) + 1;
            while (Volatile.Read(ref counter) != wanted)
            {
                int token = ping.PrepareWait();
                if (Volatile.Read(ref counter) == wanted)
                {
                    ping.CancelWait();
                    break;
                }

                if (!ping.Wait(token, TimeSpan.FromSeconds(60)))
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"error LostWakeup round {r} counter {Volatile.Read(ref counter)}"));
                    return 1;
                }
            }

            Volatile.Write(ref counter, wanted + 1);
            pong.Signal();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done rounds={rounds}"));
        return 0;
    }
}
