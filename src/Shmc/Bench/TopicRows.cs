using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels;

namespace Shmc.Bench;

/// <summary>
/// The fan-out rows: one publisher here, four subscribers, 64-byte messages, lossless (every subscriber gets
/// every message). The topic row runs its subscribers as four more shmc processes
/// (<c>bench-peer topic-sub SEGMENT COUNT BOUND</c>) with an acknowledgement timeout, so the publisher waits
/// for the slowest; each message carries the publisher's Stopwatch stamp, and each subscriber reports the
/// median and 99th percentile of its one-way latency. The reference is the in-process BCL: one writer task
/// writing every message into four bounded channels read by four tasks.
/// </summary>
internal static class TopicRows
{
    public const string TopicId = "shared-topic";
    public const string LossyId = "shared-topic-lossy";
    public const string FreeBufferId = "shared-topic-freebuffer";
    public const string BclId = "bcl-fanout";
    public const string PeerKind = "topic-sub";
    private const int Subscribers = 4;
    private const long MaxMessages = 200_000;
    private const string TopicName = "fanout";
    private static int s_rows;

    public static BenchRow Bcl(BenchEntry entry, BenchOptions options)
    {
        long requested = Math.Min(options.StreamMessages, MaxMessages);
        var channels = new Channel<BenchMessage>[Subscribers];
        for (int i = 0; i < Subscribers; i++)
        {
            channels[i] = Channel.CreateBounded<BenchMessage>(new BoundedChannelOptions(InProcessChannel.Capacity) { SingleReader = true, SingleWriter = true });
        }

        var readers = channels.Select(c => Task.Run(async () =>
        {
            long n = 0;
            await foreach (BenchMessage _ in c.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                n++;
            }

            return n;
        })).ToArray();
        long start = Stopwatch.GetTimestamp();
        long deadline = start + PingPong.Ticks(options.Seconds);
        long sent = Task.Run(async () =>
        {
            long i = 0;
            for (; i < requested && (i % 256 != 0 || Stopwatch.GetTimestamp() < deadline); i++)
            {
                var message = new BenchMessage(i, Stopwatch.GetTimestamp());
                foreach (Channel<BenchMessage> c in channels)
                {
                    await c.Writer.WriteAsync(message).ConfigureAwait(false);
                }
            }

            foreach (Channel<BenchMessage> c in channels)
            {
                c.Writer.Complete();
            }

            return i;
        }).GetAwaiter().GetResult();
        long[] received = Task.WhenAll(readers).GetAwaiter().GetResult();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (received.Any(r => r != sent))
        {
            throw new InvalidOperationException($"{sent} messages written but the readers got {string.Join(", ", received)}");
        }

        return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "messages") + " to each of 4 reader tasks");
    }

    /// <summary>Lossless: an acknowledgement timeout makes the publisher wait for the slowest subscriber.</summary>
    public static BenchRow Topic(BenchEntry entry, BenchOptions options) => Run(entry, options, lossless: true);

    /// <summary>Lossless with several messages in flight: the publisher waits only for the buffer it is about to overwrite (iceoryx2's blocking publisher).</summary>
    public static BenchRow FreeBuffer(BenchEntry entry, BenchOptions options) => Run(entry, options, lossless: true, TopicAckPolicy.FreeBuffer);

    /// <summary>Lossy: no acknowledgement, 64 buffers; the publisher never waits and slow subscribers skip.</summary>
    public static BenchRow Lossy(BenchEntry entry, BenchOptions options) => Run(entry, options, lossless: false);

    private static BenchRow Run(BenchEntry entry, BenchOptions options, bool lossless, TopicAckPolicy policy = TopicAckPolicy.PreviousMessage)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (topics need Linux)");
        }

        string name = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}-topic-{Interlocked.Increment(ref s_rows)}");
        SharedSegment.Remove(name);
        var peers = new List<(Process Peer, Task<string> Errors)>();
        try
        {
            using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 4L << 20, MaxCapacity = 4L << 20, RemoveOnLastDetach = true });
            var topicOptions = lossless
                ? new SharedTopicOptions { BufferCount = 16, MinSize = BenchMessage.Size, AckTimeout = TimeSpan.FromSeconds(30), AckPolicy = policy }
                : new SharedTopicOptions { BufferCount = 64, MinSize = BenchMessage.Size };
            using SharedTopic topic = SharedTopic.Create(segment, TopicName, topicOptions);
            long requested = Math.Min(options.StreamMessages, MaxMessages);
            string bound = ((options.Seconds * 2) + 30).ToString(CultureInfo.InvariantCulture);
            for (int i = 0; i < Subscribers; i++)
            {
                Process peer = BenchCommand.StartSelf("bench-peer", PeerKind, name, requested.ToString(CultureInfo.InvariantCulture), bound, lossless ? "lossless" : "lossy");
                peers.Add((peer, peer.StandardError.ReadToEndAsync()));
            }

            foreach ((Process peer, Task<string> errors) in peers)
            {
                PeerProcess.ExpectLine(peer, errors, "ready");
            }

            SharedSegment.Remove(name);
            long sent;
            double seconds;
            using (TopicPublisher publisher = topic.CreatePublisher())
            {
                byte[] payload = new byte[BenchMessage.Size];
                long start = Stopwatch.GetTimestamp();
                long deadline = start + PingPong.Ticks(options.Seconds);
                for (sent = 0; sent < requested && (sent % 256 != 0 || Stopwatch.GetTimestamp() < deadline); sent++)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(payload, sent);
                    BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), Stopwatch.GetTimestamp());
                    publisher.Publish(payload);
                }

                // The end: one more message with id -1 tells the subscribers how many there were.
                BinaryPrimitives.WriteInt64LittleEndian(payload, -1);
                BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), sent);
                publisher.Publish(payload);
                seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }

            var medians = new List<double>();
            var delivered = new List<long>();
            double worstP99 = 0;
            foreach ((Process peer, Task<string> errors) in peers)
            {
                string done = PeerProcess.ExpectLine(peer, errors, PeerProcess.DonePrefix);
                string[] fields = done[PeerProcess.DonePrefix.Length..].Split(' ');
                long received = long.Parse(fields[0], CultureInfo.InvariantCulture);
                PeerProcess.CheckDone(peer, errors, lossless ? received : sent, sent, "messages");
                delivered.Add(received);
                medians.Add(double.Parse(fields[1], CultureInfo.InvariantCulture));
                worstP99 = Math.Max(worstP99, double.Parse(fields[2], CultureInfo.InvariantCulture));
            }

            medians.Sort();
            string how = lossless
                ? (policy == TopicAckPolicy.FreeBuffer
                    ? " to each of 4 subscriber processes, none lost (ack timeout, FreeBuffer: up to 16 messages in flight)"
                    : " to each of 4 subscriber processes, none lost (ack timeout: every message waits for the slowest)")
                : $" published; the 4 subscriber processes got {string.Join(" / ", delivered.Select(d => $"{100.0 * d / Math.Max(1, sent):F0}%"))} (no ack: the publisher never waits, slow subscribers skip)";
            string notes = PingPong.CountNote(sent, requested, "messages") + how +
                $"; one-way latency median per subscriber {string.Join(" / ", medians.Select(m => $"{m / 1000:F1} us"))}, worst p99 {worstP99 / 1000:F1} us; 6 processes on this machine's CPUs";
            // A throughput row: the latency is in the notes (the ratio column compares rates).
            return BenchRow.FromThroughput(entry, sent, seconds, requested, notes);
        }
        finally
        {
            foreach ((Process peer, Task<string> _) in peers)
            {
                if (!peer.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    peer.Kill(entireProcessTree: true);
                    peer.WaitForExit();
                }

                peer.Dispose();
            }

            SharedSegment.Remove(name);
        }
    }

    /// <summary>
    /// A subscriber peer: subscribes, says "ready", receives until the end message (id -1), and says
    /// "done N MEDIAN_NS P99_NS". Exit 0, 3 past its time bound, 4 on a message out of order.
    /// </summary>
    public static int Peer(string segmentName, string countText, string boundSeconds, string mode)
    {
        bool lossless = mode == "lossless";
        if (!long.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out long count) || count < 1 ||
            !double.TryParse(boundSeconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double bound) || bound is <= 0 or > 100_000)
        {
            return Program.Fail("bench-peer topic-sub: bad arguments", Program.ExitUsage);
        }

        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedTopic topic = SharedTopic.Open(segment, TopicName);
        using TopicSubscriber subscriber = topic.Subscribe();
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        long[] latencies = new long[count];
        byte[] buffer = new byte[topic.MaxMessageSize];
        long received = 0;
        long last = 0;
        long deadline = Stopwatch.GetTimestamp() + PingPong.Ticks(bound);
        while (true)
        {
            // The blocking receive: this thread sleeps on the topic's futex word itself (no hop through the
            // waiter thread and the thread pool), as an eCAL subscriber's Receive(timeout) does.
            if (!subscriber.Receive(buffer, TimeSpan.FromMilliseconds(100), out TopicMessageInfo _))
            {
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    return 3;
                }

                continue;
            }

            long now = Stopwatch.GetTimestamp();
            long id = BinaryPrimitives.ReadInt64LittleEndian(buffer);
            if (id == -1)
            {
                break;
            }

            if ((lossless ? id != received : id < last) || received >= count)
            {
                return Program.Fail($"expected message {received}, got {id}", 4);
            }

            last = id + 1;
            latencies[received++] = now - BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(8));
        }

        Span<long> measured = latencies.AsSpan(0, (int)received);
        measured.Sort();
        double nsPerTick = 1e9 / Stopwatch.Frequency;
        double median = received == 0 ? 0 : measured[(int)(received / 2)] * nsPerTick;
        double p99 = received == 0 ? 0 : measured[(int)Math.Min(received - 1, received * 99 / 100)] * nsPerTick;
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeerProcess.DonePrefix}{received} {median:F0} {p99:F0}"));
        Console.Out.Flush();
        return 0;
    }
}
