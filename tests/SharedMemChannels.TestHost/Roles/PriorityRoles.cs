using System.Globalization;
using SharedMemChannels.Rings;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for prioritized channels (PrioritizedChannelCrashTests): a writer and a reader
/// that stop at a chosen store of the heap's update (<see cref="PriorityTestHooks"/>) to be killed there.
/// </summary>
internal static class PriorityRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("prio-writer", Writer);
        roles.Add("prio-reader", Reader);
    }

    private static string Line(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Stops the process at store <c>--kill-step K</c> of its updates (counting every store of every insert,
    /// remove and resize it makes): prints "end parked" and sleeps, holding the heap's lock, until killed.
    /// </summary>
    private static void ParkAt(Options o)
    {
        int killStep = o.GetInt("kill-step", 0);
        int steps = 0;
        if (killStep > 0)
        {
            PriorityTestHooks.Step = () =>
            {
                if (++steps == killStep)
                {
                    Console.WriteLine("end parked");
                    Console.Out.Flush();
                    Thread.Sleep(Timeout.Infinite);
                }
            };
        }
    }

    /// <summary>
    /// <c>prio-writer SEGMENT --channel NAME --id W --count N [--seed S] [--kill-step K]</c>: opens the
    /// prioritized channel (default comparer) and writes N items (priority &lt;&lt; 40) | (W &lt;&lt; 20) | n,
    /// with random priorities, printing "committed n=K" after each write returned; "end done" at the end.
    /// </summary>
    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = SharedChannel.OpenPrioritized<long>(segment, o.Get("channel"), null);
        long id = o.GetInt("id", 1);
        int count = o.GetInt("count", 100);
        var random = new Random(o.GetInt("seed", 1));
        ParkAt(o);
        for (long n = 0; n < count; n++)
        {
            long priority = random.Next(0, 1024);
            if (!channel.Writer.TryWrite((priority << 40) | (id << 20) | n))
            {
                Console.WriteLine(Line($"error refused n={n}"));
                return 1;
            }

            Console.WriteLine(Line($"committed n={n + 1}"));
        }

        Console.WriteLine("end done");
        return 0;
    }

    /// <summary>
    /// <c>prio-reader SEGMENT --channel NAME --count N [--kill-step K]</c>: reads up to N items with TryRead
    /// (stopping when the channel is empty), printing "got v=ITEM" right after each; "end done" at the end.
    /// </summary>
    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = SharedChannel.OpenPrioritized<long>(segment, o.Get("channel"), null);
        int count = o.GetInt("count", 100);
        ParkAt(o);
        for (int i = 0; i < count && channel.Reader.TryRead(out long item); i++)
        {
            Console.WriteLine(Line($"got v={item}"));
        }

        Console.WriteLine("end done");
        return 0;
    }
}
