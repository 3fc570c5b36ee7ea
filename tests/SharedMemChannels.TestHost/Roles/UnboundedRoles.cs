using System.Globalization;
using SharedMemChannels.Rings;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for unbounded channels (UnboundedChannelTests): writers and readers in other
/// processes, and a chain-lock holder that is killed half way through linking a chunk.
/// </summary>
internal static class UnboundedRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("unbounded-writer", Writer);
        roles.Add("unbounded-reader", Reader);
        roles.Add("unbounded-link-die", LinkDie);
    }

    private static SharedChannel<long> OpenChannel(Options o, SharedSegment segment)
    {
        SharedChannel<long> channel = SharedChannel.Open<long>(segment, o.Get("channel"));
        if (!channel.IsUnbounded)
        {
            channel.Dispose();
            throw new InvalidOperationException($"channel '{o.Get("channel")}' is not unbounded");
        }

        return channel;
    }

    /// <summary>
    /// <c>unbounded-writer SEGMENT --channel NAME --id W [--count N] [--every K] [--wait-go]</c>: writes
    /// (W &lt;&lt; 32) | n for n = 0, 1, ... with TryWrite (an unbounded channel never makes it wait). With
    /// --count, writes N items, prints "wrote n=N" and exits; without, writes until killed, printing
    /// "committed n=K" every K items. "ready" once it holds the writer end (then, with --wait-go, it
    /// waits for the line "go"); "oom n=K" if the segment ran out of memory (WriteAsync threw
    /// OutOfSharedMemoryException).
    /// </summary>
    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        long writer = o.GetInt("id", 1);
        long count = o.Has("count") ? long.Parse(o.Get("count"), CultureInfo.InvariantCulture) : long.MaxValue;
        int every = o.GetInt("every", 64);
        if (!channel.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
        {
            Console.WriteLine("error Closed the channel is completed");
            return 1;
        }

        Console.WriteLine("ready");
        if (o.Has("wait-go") && Console.ReadLine() != "go")
        {
            return 0;
        }

        for (long n = 0; n < count; n++)
        {
            long item = (writer << 32) | n;
            if (!channel.Writer.TryWrite(item))
            {
                try
                {
                    channel.Writer.WriteAsync(item).AsTask().GetAwaiter().GetResult();
                }
                catch (OutOfSharedMemoryException)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"oom n={n}"));
                    return 0;
                }
            }

            if (count == long.MaxValue && (n + 1) % every == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"committed n={n + 1}"));
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote n={count}"));
        return 0;
    }

    /// <summary>
    /// <c>unbounded-reader SEGMENT --channel NAME</c>: reads (ReadAllAsync) until the channel is completed
    /// and drained, checking that each writer's items come in order; prints "ready" once it holds the
    /// reader end, then "end items=N sum=S inorder=BOOL" (S the sum of the items).
    /// </summary>
    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        _ = channel.Reader.TryPeek(out _); // takes the reader end
        Console.WriteLine("ready");
        var next = new Dictionary<long, long>();
        long items = 0;
        long sum = 0;
        bool inOrder = true;
        Task reading = Task.Run(async () =>
        {
            await foreach (long item in channel.Reader.ReadAllAsync())
            {
                long writer = item >> 32;
                long sequence = item & 0xFFFF_FFFF;
                // Readers compete: a writer's items reach this reader in order, with gaps (taken by others).
                if (next.TryGetValue(writer, out long expected) && sequence < expected)
                {
                    inOrder = false;
                }

                next[writer] = sequence + 1;
                items++;
                sum += item;
            }
        });
        reading.GetAwaiter().GetResult();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"end items={items} sum={sum} inorder={inOrder}"));
        return 0;
    }

    /// <summary>
    /// <c>unbounded-link-die SEGMENT --channel NAME --stage unlinked|linked</c>: takes the chain lock and
    /// starts linking a new tail chunk, stopping before the link (unlinked) or after it but before the
    /// descriptor is updated (linked); prints "locked" and waits to be killed there.
    /// </summary>
    private static int LinkDie(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        var ring = (UnboundedRing<long>)channel.Core.Ring;
        ring.LinkAndStopForTest(o.Get("stage") == "linked", () =>
        {
            Console.WriteLine("locked");
            Program.ParkUntilKilled();
        });
        return 3;
    }
}
