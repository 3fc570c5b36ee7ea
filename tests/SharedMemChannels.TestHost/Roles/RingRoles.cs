using System.Globalization;
using SharedMemChannels.Rings;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for rings and event counts. Arguments are positional:
/// <c>ring-claim SEGMENT OFFSET LENGTH write|read|replace</c> claims an MPMC cell and stops (to be killed there);
/// <c>ec-pong SEGMENT OFFSET ROUNDS</c> answers a ping-pong over two event counts;
/// <c>ring-write SEGMENT OFFSET LENGTH FROM COUNT [complete]</c> writes FROM..FROM+COUNT-1 into an MPMC
/// ring, sleeping on the writers' event count when full, then optionally completes it with an error.
/// </summary>
internal static class RingRoles
{
    /// <summary>Where the ping-pong's words sit in its block: the counter and two event counts, a line each.</summary>
    public const int PongCounter = 0;
    public const int PingEvent = 128;
    public const int PongEvent = 256;

    public static void Register(Dictionary<string, Role> roles)
    {
        foreach (string role in new[] { "ring-claim", "ec-pong", "ring-write" })
        {
            roles.Add(role, o => Run(role, o.Args));
        }
    }

    public static int Run(string role, string[] args) => role switch
    {
        "ring-claim" => Claim(args),
        "ec-pong" => Pong(args),
        "ring-write" => Write(args),
        _ => 2,
    };

    private static long Long(string text) => long.Parse(text, CultureInfo.InvariantCulture);

    private static int Claim(string[] args)
    {
        using SharedSegment segment = SharedSegment.Open(args[0]);
        MpmcRing<long> ring = MpmcRing<long>.Attach(segment.Memory, Long(args[1]), Long(args[2]), segment.Processes, segment.Owner);
        long pos = args[3] switch
        {
            "write" => ring.ClaimWriteForTest(),
            "replace" => ring.ClaimReplaceForTest(),
            _ => ring.ClaimReadForTest(),
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"claimed pos={pos}"));
        using var never = new ManualResetEventSlim();
        never.Wait();
        return 3;
    }

    private static int Write(string[] args)
    {
        using SharedSegment segment = SharedSegment.Open(args[0]);
        MpmcRing<long> ring = MpmcRing<long>.Attach(segment.Memory, Long(args[1]), Long(args[2]), segment.Processes, segment.Owner);
        long from = Long(args[3]);
        long count = Long(args[4]);
        Console.WriteLine("ready");
        for (long value = from; value < from + count; value++)
        {
            while (true)
            {
                RingStatus status = ring.TryWrite(value);
                if (status == RingStatus.Success)
                {
                    break;
                }

                if (status == RingStatus.Full)
                {
                    EventCount space = ring.Header.WritersEvent;
                    int token = space.PrepareWait();
                    if (ring.Count < ring.Capacity)
                    {
                        space.CancelWait();
                        continue;
                    }

                    // Bounded: a reader holding the last free cell a lap back does not signal when it dies.
                    space.Wait(token, TimeSpan.FromMilliseconds(100));
                }
                else
                {
                    Thread.Yield();
                }
            }
        }

        if (args.Length > 5 && args[5] == "complete")
        {
            ring.Header.TryComplete(segment.Owner, new TimeoutException($"writer {Environment.ProcessId} gave up"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done count={count}"));
        return 0;
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
