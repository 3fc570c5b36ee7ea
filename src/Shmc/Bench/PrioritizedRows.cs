using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels;

namespace Shmc.Bench;

/// <summary>
/// The prioritized rows: 64-bit keys in a random order streamed through the BCL's
/// <see cref="Channel.CreateUnboundedPrioritized{T}(UnboundedPrioritizedChannelOptions{T})"/> between two
/// tasks of this process (the reference), and through a prioritized <see cref="SharedChannel{T}"/> from this
/// process to a second shmc process (the hidden <c>bench-peer prioritized SEGMENT BOUND</c>), measured in the
/// same run. Both writers run the same loop: they write while fewer than <see cref="Backlog"/> items wait
/// and yield otherwise, so both heaps sort about that many items (an unbounded writer that ran ahead would
/// measure a heap of millions instead); both readers sum what they read and the sums are checked.
/// </summary>
internal static class PrioritizedRows
{
    public const string BclId = "bcl-prioritized";
    public const string SharedId = "shared-prioritized";
    public const string PeerKind = "prioritized";

    /// <summary>Items the writers let wait at most before they yield: the size of the heaps being sorted.</summary>
    public const int Backlog = 4096;

    private const string ChannelName = "prio";
    private const string ReadyLine = "ready";

    private static int s_rows;

    /// <summary>Key <paramref name="n"/> of the stream, the same in every process (a 64-bit mix: a random order).</summary>
    private static long Key(long n)
    {
        ulong x = (ulong)n * 0x9E37_79B9_7F4A_7C15UL;
        x ^= x >> 31;
        return (long)(x & 0x7FFF_FFFF_FFFF_FFFF);
    }

    /// <summary>The in-process reference: a writer task and a reader task on the BCL's prioritized channel.</summary>
    public static BenchRow RunBcl(BenchEntry entry, BenchOptions options)
    {
        long requested = options.StreamMessages;
        long cap = PingPong.Ticks(options.Seconds);
        RunBclOnce(requested, Stopwatch.GetTimestamp() + (cap / 5), options.Seconds); // warm-up
        long start = Stopwatch.GetTimestamp();
        long received = RunBclOnce(requested, start + cap, options.Seconds);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return BenchRow.FromThroughput(entry, received, seconds, requested, PingPong.CountNote(received, requested, "keys") + $"; at most {Backlog:N0} waiting");
    }

    private static long RunBclOnce(long count, long deadline, double capSeconds)
    {
        Channel<long> channel = Channel.CreateUnboundedPrioritized(new UnboundedPrioritizedChannelOptions<long> { SingleReader = true, SingleWriter = true });
        Task<(long Sent, long Sum)> writer = Task.Run(() =>
        {
            (long sent, long sum) = Produce(channel, 0, count, deadline);
            channel.Writer.TryComplete();
            return (sent, sum);
        });
        Task<(long Received, long Sum)> reader = Task.Run(() => ConsumeAsync(channel.Reader, long.MaxValue));
        if (!Task.WhenAll(writer, reader).Wait(TimeSpan.FromSeconds((capSeconds * 3) + 30)))
        {
            channel.Writer.TryComplete();
            throw new TimeoutException("the in-process prioritized stream did not finish");
        }

        if (reader.Result != writer.Result)
        {
            throw new InvalidOperationException($"{writer.Result} keys written but {reader.Result} read");
        }

        return reader.Result.Received;
    }

    /// <summary>The measured row: the writer here, the reader in a second process, through a prioritized shared channel.</summary>
    public static BenchRow RunShared(BenchEntry entry, BenchOptions options)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (shared channels need Linux)");
        }

        string name = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}-prioritized-{Interlocked.Increment(ref s_rows)}");
        SharedSegment.Remove(name);
        try
        {
            using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 4 << 20, MaxCapacity = 64 << 20, RemoveOnLastDetach = true });
            using SharedChannel<long> channel = SharedChannel.CreateUnboundedPrioritized<long>(segment, ChannelName, new SharedChannelOptions { SingleReader = true, SingleWriter = true, ChunkCapacity = Backlog * 2 });
            string bound = ((options.Seconds * 2) + 20).ToString(CultureInfo.InvariantCulture);
            using Process peer = BenchCommand.StartSelf("bench-peer", PeerKind, name, bound);
            Task<string> peerErrors = peer.StandardError.ReadToEndAsync();
            try
            {
                PeerProcess.ExpectLine(peer, peerErrors, ReadyLine);
                SharedSegment.Remove(name);
                long requested = options.StreamMessages;
                long cap = PingPong.Ticks(options.Seconds);
                (long warm, long warmSum) = Produce(channel, 0, requested, Stopwatch.GetTimestamp() + (cap / 5));
                long start = Stopwatch.GetTimestamp();
                (long sent, long sum) = Produce(channel, warm, requested, start + cap);
                channel.Writer.TryComplete();
                string done = PeerProcess.ExpectLine(peer, peerErrors, PeerProcess.DonePrefix);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                string[] words = done.Split(' ');
                long received = long.Parse(words[1], CultureInfo.InvariantCulture);
                PeerProcess.CheckDone(peer, peerErrors, received, warm + sent, "keys");
                if (long.Parse(words[2], CultureInfo.InvariantCulture) != unchecked(warmSum + sum))
                {
                    throw new InvalidOperationException("the peer read other keys than were written");
                }

                return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "keys") + $"; at most {Backlog:N0} waiting; the heap in the segment, read smallest first in the 2nd process");
            }
            finally
            {
                channel.Writer.TryComplete();
                if (!peer.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    peer.Kill(entireProcessTree: true);
                    peer.WaitForExit();
                }

                _ = peerErrors.Wait(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception e) when (e is ChannelClosedException or InvalidSegmentException or ArgumentException or OutOfSharedMemoryException)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        finally
        {
            SharedSegment.Remove(name);
        }
    }

    /// <summary>
    /// Writes keys <paramref name="first"/>.. until <paramref name="count"/> went in or the deadline, yielding
    /// while <see cref="Backlog"/> wait; returns how many and their sum.
    /// </summary>
    private static (long Sent, long Sum) Produce(Channel<long> channel, long first, long count, long deadline)
    {
        long sent = 0;
        long sum = 0;
        while (sent < count)
        {
            while (channel.Reader.Count >= Backlog)
            {
                Thread.Yield();
            }

            long key = Key(first + sent);
            if (!channel.Writer.TryWrite(key))
            {
                throw new InvalidOperationException("the prioritized channel refused a key");
            }

            sum = unchecked(sum + key);
            sent++;
            if ((sent & 1023) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break; // the time cap
            }
        }

        return (sent, sum);
    }

    /// <summary>Reads until the channel completes (or the deadline, in stopwatch ticks); returns how many and their sum.</summary>
    private static async Task<(long Received, long Sum)> ConsumeAsync(ChannelReader<long> reader, long deadline)
    {
        long received = 0;
        long sum = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out long key))
            {
                sum = unchecked(sum + key);
                received++;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("the peer's time bound passed");
            }
        }

        return (received, sum);
    }

    /// <summary>
    /// The peer: opens the row's channel, says "ready", reads until the channel completes, then says
    /// "done N SUM". Exit 0 when done, 3 when its own time bound passed.
    /// </summary>
    public static int Peer(string segmentName, string boundSeconds)
    {
        if (!double.TryParse(boundSeconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double bound) || bound is <= 0 or > 100_000)
        {
            return Program.Fail("bench-peer prioritized: bad arguments", Program.ExitUsage);
        }

        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedChannel<long> channel = SharedChannel.OpenPrioritized<long>(segment, ChannelName, null);
        _ = channel.Reader.TryPeek(out _); // takes the reader end before saying ready
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();
        try
        {
            (long received, long sum) = ConsumeAsync(channel.Reader, Stopwatch.GetTimestamp() + PingPong.Ticks(bound)).GetAwaiter().GetResult();
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeerProcess.DonePrefix}{received} {sum}"));
            Console.Out.Flush();
            return 0;
        }
        catch (TimeoutException)
        {
            return 3;
        }
    }
}
