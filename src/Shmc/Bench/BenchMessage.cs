using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Shmc.Bench;

/// <summary>
/// The 64-byte message of every row: a sequence number the reader checks (a lost, repeated or torn
/// message fails the row), a send timestamp, and payload to make up the size.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BenchMessage
{
    /// <summary>The message's size in bytes: 64, as in the C references.</summary>
    public const int Size = 64;

    public long Sequence;
    public long Stamp;
    public long Payload2;
    public long Payload3;
    public long Payload4;
    public long Payload5;
    public long Payload6;
    public long Payload7;

    public BenchMessage(long sequence, long stamp)
    {
        Sequence = sequence;
        Stamp = stamp;
        Payload2 = Payload3 = Payload4 = Payload5 = Payload6 = Payload7 = sequence;
    }
}

/// <summary>The back-off of every spinning loop here: one PAUSE (x86) or YIELD (arm64), as in the C references.</summary>
internal static class SpinPause
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Once()
    {
        if (X86Base.IsSupported)
        {
            X86Base.Pause();
        }
        else if (ArmBase.IsSupported)
        {
            ArmBase.Yield();
        }
        else
        {
            Thread.SpinWait(1);
        }
    }
}
