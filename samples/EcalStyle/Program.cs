using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace SharedMemChannels.Samples;

/// <summary>
/// Seed 002 (eCAL's shared-memory transport) ported. Run with no arguments, this program plays a camera
/// topic with each role in its own process:
/// <list type="bullet">
/// <item>this process makes the segment and the topic "camera_frames" (eCAL's memory files: several
/// buffers, <c>min_size</c> + <c>reserve</c>, an acknowledgement timeout, hashed payloads, a history) and
/// holds it for the scenario's length: a topic is reference counted and goes with its last holder;</item>
/// <item><b>callback</b>: eCAL's <c>CSubscriber</c> with a receive callback: <c>topic.Subscribe()</c> and
/// <c>await foreach</c>, each message copied out and handed to a callback with its header;</item>
/// <item><b>zero-copy</b>: a subscriber that reads every message in place in the publisher's buffer
/// (<c>TryBorrow</c> → <see cref="TopicMessage"/>; disposing it is the acknowledgement);</item>
/// <item><b>publisher</b>: eCAL's <c>CPublisher</c>: <c>SharedTopic.OpenOrCreate</c> + <c>CreatePublisher</c>,
/// N <see cref="CameraFrameHeader"/> messages, one full frame of 64 KiB that makes the buffers grow (eCAL:
/// the memory file grows) and one full frame written in place (<c>Loan</c> + <c>Send</c>, zero copy);</item>
/// <item><b>late-joiner</b>: subscribes after the publisher is gone and receives the last
/// <see cref="HistoryDepth"/> messages from the history, typed (<c>Subscribe&lt;CameraFrameHeader&gt;()</c>).</item>
/// </list>
/// Both subscribers say they are subscribed ("ready") before the publisher starts. With the ack timeout
/// the publisher waits for both before it reuses a buffer, so nothing is lost: this process checks that
/// each got every message, in order, with no drop, and that the topic and the segment are gone at the end,
/// and exits 0 (1 on any failure, 2 for bad arguments).
/// </summary>
internal static class Program
{
    /// <summary>The topic's name (eCAL's topic name; its memory files were "camera_frames_&lt;time&gt;_shm").</summary>
    private const string TopicName = "camera_frames";

    /// <summary>Messages a late subscriber receives first.</summary>
    private const int HistoryDepth = 4;

    /// <summary>A full frame's pixels: 128 x 128 RGBA.</summary>
    private const int FramePixelBytes = 128 * 128 * 4;

    /// <summary>The fewest header messages: the history must hold header messages only (the late joiner reads them typed).</summary>
    private const int MinCount = 2 * HistoryDepth;

    private static readonly string[] SubscriberRoles = ["callback", "zero-copy"];

    private static async Task<int> Main(string[] args)
    {
        try
        {
            return args.FirstOrDefault() switch
            {
                "publisher" => Publisher(args[1], SampleArgs.Int(args[2])),
                "callback" => await CallbackSubscriberAsync(args[1], SampleArgs.Int(args[2])).ConfigureAwait(false),
                "zero-copy" => await ZeroCopySubscriberAsync(args[1], SampleArgs.Int(args[2])).ConfigureAwait(false),
                "late-joiner" => await LateJoinerAsync(args[1], SampleArgs.Int(args[2])).ConfigureAwait(false),
                _ => await RunScenarioAsync(args).ConfigureAwait(false),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"usage: EcalStyle [--name SEGMENT] [--count FRAMES (at least {MinCount})]   ({e.Message})");
            return 2;
        }
    }

    /// <summary>
    /// The topic's shape, eCAL's memory-file settings (<c>ecal.ini</c>'s <c>memfile_minsize</c>,
    /// <c>memfile_reserve</c>, <c>memfile_ack_timeout</c>, <c>memfile_buffer_count</c>). Every process that
    /// creates the topic gives the same; opening it with other options is an <see cref="ArgumentException"/>.
    /// </summary>
    private static SharedTopicOptions TopicOptions() => new()
    {
        // Multi-buffering: the publisher fills the next buffer while subscribers read the last ones.
        BufferCount = 4,
        // min_size + reserve: 1280 payload bytes per buffer at first; a larger message grows them.
        MinSize = 1024,
        Reserve = 256,
        // Every message carries an xxHash64 of its payload, checked by every subscriber on receipt.
        HashPayloads = true,
        // The publisher waits (at most this long) until every live subscriber read the previous message:
        // lossless as long as subscribers keep up within it. Generous for a loaded machine.
        AckTimeout = TimeSpan.FromSeconds(5),
        // A subscriber that joins late starts with the last few messages.
        HistoryDepth = HistoryDepth,
    };

    /// <summary>The messages in order: <paramref name="count"/> headers, with two full frames in the middle.</summary>
    private static int TotalMessages(int count) => count + 2;

    /// <summary>The id of the full frame published by copy (it makes the buffers grow).</summary>
    private static int CopiedFrameId(int count) => count / 2;

    /// <summary>The id of the full frame written in place (loaned, zero copy).</summary>
    private static int LoanedFrameId(int count) => (count / 2) + 1;

    private static int CheckedCount(int count) =>
        count >= MinCount ? count : throw new ArgumentException($"--count takes at least {MinCount} frames, not {count}.", nameof(count));

    /// <summary>The whole scenario: the topic here, two subscribers, the publisher, then the late joiner, each a child process.</summary>
    private static async Task<int> RunScenarioAsync(string[] args)
    {
        string segmentName = SampleArgs.SegmentName(args, "ecal");
        int count = CheckedCount(SampleArgs.GetCount(args, "--count", 1000));
        int total = TotalMessages(count);
        string countText = count.ToString(CultureInfo.InvariantCulture);
        Console.WriteLine($"EcalStyle: segment '{segmentName}', topic '{TopicName}', {total} messages ({count} frame headers, a full frame copied, a full frame loaned), {SubscriberRoles.Length} subscribers and a late joiner");

        var children = new List<RoleProcess>();
        try
        {
            int initialBufferSize;
            int grownBufferSize;
            using (SharedSegment segment = SharedSegment.Create(segmentName, new SegmentOptions { RemoveOnLastDetach = true }))
            {
                using (SharedTopic topic = SharedTopic.Create(segment, TopicName, TopicOptions()))
                {
                    initialBufferSize = topic.MaxMessageSize;
                    Console.WriteLine($"topic '{topic.Name}': {topic.BufferCount} buffers of {initialBufferSize} bytes, held here for the scenario");

                    // Subscribed before the publisher starts: each says "ready" once its subscription exists.
                    var subscribers = new List<RoleProcess>();
                    foreach (string role in SubscriberRoles)
                    {
                        subscribers.Add(RoleProcess.Start(role, ShowFrame(), role, segmentName, countText));
                    }

                    children.AddRange(subscribers);
                    foreach (RoleProcess subscriber in subscribers)
                    {
                        await subscriber.WaitForLineAsync("ready").ConfigureAwait(false);
                    }

                    RoleProcess publisher = RoleProcess.Start("publisher", null, "publisher", segmentName, countText);
                    children.Add(publisher);
                    await publisher.ExpectSuccessAsync().ConfigureAwait(false);
                    foreach (RoleProcess subscriber in subscribers)
                    {
                        await subscriber.ExpectSuccessAsync().ConfigureAwait(false);
                    }

                    grownBufferSize = topic.MaxMessageSize;

                    // The publisher is gone; the topic and its last messages live on because this process holds it.
                    RoleProcess late = RoleProcess.Start("late-joiner", null, "late-joiner", segmentName, countText);
                    children.Add(late);
                    await late.ExpectSuccessAsync().ConfigureAwait(false);

                    foreach (RoleProcess subscriber in subscribers)
                    {
                        if (CheckFrames(subscriber, 0, total) is { } error)
                        {
                            return Fail(error);
                        }
                    }

                    Console.WriteLine($"all {subscribers.Count} subscribers received all {total} messages in order with 0 drops");
                    if (CheckFrames(late, total - HistoryDepth, total) is { } lateError)
                    {
                        return Fail(lateError);
                    }

                    Console.WriteLine($"late joiner received the last {HistoryDepth} messages from the history (ids {total - HistoryDepth}..{total - 1})");
                    if (grownBufferSize < CameraFrameHeader.Size + FramePixelBytes)
                    {
                        return Fail($"the buffers hold {grownBufferSize} bytes, too few for the full frame: they did not grow");
                    }

                    Console.WriteLine($"buffers grew from {initialBufferSize} to {grownBufferSize} bytes for the full frame");
                }

                // This process held the topic's last reference: disposing it destroyed the topic.
                if (SharedTopic.Exists(segment, TopicName))
                {
                    return Fail($"topic '{TopicName}' still exists after its last holder let go");
                }

                Console.WriteLine($"topic '{TopicName}' destroyed with its last holder");
            }

            if (SharedSegment.Exists(segmentName))
            {
                return Fail($"segment '{segmentName}' still exists after its last process detached");
            }

            Console.WriteLine($"segment '{segmentName}' removed with its last process");
            Console.WriteLine("EcalStyle: OK");
            return 0;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or FormatException)
        {
            return Fail(e.Message);
        }
        finally
        {
            foreach (RoleProcess child in children)
            {
                child.Dispose();
            }

            // After a failure a role may have been killed before it detached: remove what is left.
            SharedSegment.Remove(segmentName);
        }
    }

    /// <summary>Shows a subscriber's first three frame lines and those of full frames; keeps them all.</summary>
    private static Func<string, bool> ShowFrame()
    {
        int shown = 0;
        return line => !line.StartsWith("frame ", StringComparison.Ordinal) || !line.Contains(" pixels=0 ", StringComparison.Ordinal) || Interlocked.Increment(ref shown) <= 3;
    }

    /// <summary>Whether <paramref name="role"/> printed frames <paramref name="first"/>..<paramref name="end"/>-1, each once, in order, none dropped; the error if not.</summary>
    private static string? CheckFrames(RoleProcess role, int first, int end)
    {
        long expected = first;
        foreach (string line in role.Lines.Where(l => l.StartsWith("frame ", StringComparison.Ordinal)))
        {
            long id = long.Parse(SampleArgs.Field(line, "id"), CultureInfo.InvariantCulture);
            if (id != expected)
            {
                return $"{role.Label} received message {id} where {expected} was next";
            }

            if (SampleArgs.Field(line, "dropped") != "0")
            {
                return $"{role.Label} lost messages before {id}";
            }

            expected++;
        }

        return expected == end ? null : $"{role.Label} received {expected - first} messages, not {end - first}";
    }

    private static int Fail(string why)
    {
        Console.WriteLine($"EcalStyle: FAILED: {why}");
        return 1;
    }

    /// <summary>
    /// eCAL's <c>CPublisher</c>: opens the topic (or creates it, with the same options), becomes its one
    /// publisher and sends the frames. Every <c>Publish</c> waits, at most the ack timeout, until both
    /// subscribers read the previous message.
    /// </summary>
    private static int Publisher(string segmentName, int count)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedTopic topic = SharedTopic.OpenOrCreate(segment, TopicName, TopicOptions());
        using TopicPublisher publisher = topic.CreatePublisher();
        Console.WriteLine($"publishing on '{topic.Name}': {topic.BufferCount} buffers of {topic.MaxMessageSize} bytes, ack timeout {TopicOptions().AckTimeout.TotalMilliseconds:F0} ms, history {HistoryDepth}, xxHash64 payloads");

        var clock = Stopwatch.StartNew();
        int total = TotalMessages(count);
        for (int sequence = 0; sequence < total; sequence++)
        {
            long id;
            if (sequence == CopiedFrameId(count))
            {
                // A full frame, larger than the buffers: the publisher grows them first (eCAL: the memory
                // file is recreated larger) and the subscribers follow.
                byte[] frame = new byte[CameraFrameHeader.Size + FramePixelBytes];
                CameraFrameHeader header = CameraFrameHeader.For(sequence, FramePixelBytes);
                MemoryMarshal.Write(frame, in header);
                CameraFrameHeader.FillPixels(sequence, frame.AsSpan(CameraFrameHeader.Size));
                int before = topic.MaxMessageSize;
                id = publisher.Publish(frame);
                Console.WriteLine($"sent id={id} full frame of {frame.Length} bytes (copied): buffers grew from {before} to {topic.MaxMessageSize} bytes");
            }
            else if (sequence == LoanedFrameId(count))
            {
                // Zero copy: the next buffer is loaned, the frame is written straight into shared memory.
                TopicLoan loan = publisher.Loan(CameraFrameHeader.Size + FramePixelBytes);
                CameraFrameHeader header = CameraFrameHeader.For(sequence, FramePixelBytes);
                MemoryMarshal.Write(loan.Span, in header);
                CameraFrameHeader.FillPixels(sequence, loan.Span[CameraFrameHeader.Size..]);
                id = loan.Send();
                Console.WriteLine($"sent id={id} full frame of {loan.Size} bytes (loaned, written in place)");
            }
            else
            {
                id = publisher.Publish(CameraFrameHeader.For(sequence, 0));
                if (sequence < 3)
                {
                    Console.WriteLine($"sent id={id} frame header");
                }
            }

            if (id != sequence)
            {
                Console.WriteLine($"error: message {sequence} got id {id}");
                return 1;
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"published {total} messages in {clock.Elapsed.TotalSeconds:F2} s"));
        return 0;
    }

    /// <summary>
    /// eCAL's <c>CSubscriber</c> with <c>SetReceiveCallback</c>: every message is copied out of the topic
    /// and handed, with its header, to <see cref="OnReceive"/>. Stops after the last message it expects.
    /// </summary>
    private static async Task<int> CallbackSubscriberAsync(string segmentName, int count)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedTopic topic = SharedTopic.Open(segment, TopicName);
        using TopicSubscriber subscriber = topic.Subscribe();
        Console.WriteLine($"ready: subscribed to '{topic.Name}' (copying each message)");

        int total = TotalMessages(count);
        var tracker = new FrameTracker(count);
        using var timeout = new CancellationTokenSource(RoleProcess.Timeout);
        try
        {
            await foreach (byte[] message in subscriber.ReadAllAsync(timeout.Token).ConfigureAwait(false))
            {
                // The receive callback: the payload and its header (id, clock, time, size, hash, zero-copy flag).
                if (!tracker.OnReceive(subscriber.LastMessage, message))
                {
                    return 1;
                }

                if (tracker.Received == total)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"error: only {tracker.Received} of {total} messages came within {RoleProcess.Timeout.TotalSeconds:F0} s");
            return 1;
        }

        Console.WriteLine($"received {tracker.Received} messages, in order, drops={subscriber.Drops}");
        return subscriber.Drops == 0 && tracker.Received == total ? 0 : 1;
    }

    /// <summary>
    /// A zero-copy subscriber (eCAL's zero-copy mode): every message is read in place, in the publisher's
    /// buffer, and released (acknowledged) when the borrowed <see cref="TopicMessage"/> is disposed.
    /// </summary>
    private static async Task<int> ZeroCopySubscriberAsync(string segmentName, int count)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedTopic topic = SharedTopic.Open(segment, TopicName);
        using TopicSubscriber subscriber = topic.Subscribe();
        Console.WriteLine($"ready: subscribed to '{topic.Name}' (reading each message in place)");

        int total = TotalMessages(count);
        var tracker = new FrameTracker(count);
        using var timeout = new CancellationTokenSource(RoleProcess.Timeout);
        try
        {
            while (tracker.Received < total && await subscriber.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
            {
                while (tracker.Received < total && subscriber.TryBorrow(out TopicMessage message))
                {
                    using (message)
                    {
                        // message.Payload is the publisher's buffer: no copy, checked in place.
                        if (!tracker.OnReceive(message.Info, message.Payload))
                        {
                            return 1;
                        }

                        if (!message.IsIntact)
                        {
                            Console.WriteLine($"error: message {message.Info.Id} was overwritten while held (the ack timeout passed)");
                            return 1;
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"error: only {tracker.Received} of {total} messages came within {RoleProcess.Timeout.TotalSeconds:F0} s");
            return 1;
        }

        Console.WriteLine($"received {tracker.Received} messages, in order, drops={subscriber.Drops}");
        return subscriber.Drops == 0 && tracker.Received == total ? 0 : 1;
    }

    /// <summary>
    /// A subscriber that joins after the publisher left: it starts with the topic's last
    /// <see cref="HistoryDepth"/> messages, read typed (the topic carries <see cref="CameraFrameHeader"/>s).
    /// </summary>
    private static async Task<int> LateJoinerAsync(string segmentName, int count)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedTopic topic = SharedTopic.Open(segment, TopicName);
        using TopicSubscriber<CameraFrameHeader> subscriber = topic.Subscribe<CameraFrameHeader>();
        Console.WriteLine($"subscribed to '{topic.Name}' after {topic.MessageCount} messages (publisher alive: {(topic.IsPublisherAlive ? "yes" : "no")}); {subscriber.Count} waiting from the history");

        int received = 0;
        using var timeout = new CancellationTokenSource(RoleProcess.Timeout);
        await foreach (CameraFrameHeader header in subscriber.ReadAllAsync(timeout.Token).ConfigureAwait(false))
        {
            TopicMessageInfo info = subscriber.LastMessage;
            Console.WriteLine(FrameLine(info, header));
            if (header.Sequence != info.Id || header.PixelBytes != 0)
            {
                Console.WriteLine($"error: message {info.Id} carries frame {header.Sequence} with {header.PixelBytes} pixel bytes");
                return 1;
            }

            if (++received == HistoryDepth)
            {
                break;
            }
        }

        Console.WriteLine($"received {received} messages from the history, drops={subscriber.Drops}, {subscriber.Count} more waiting");
        return received == HistoryDepth && subscriber.Count == 0 && topic.MessageCount == TotalMessages(count) ? 0 : 1;
    }

    /// <summary>One received message as a line: its header fields (what eCAL's callback gets) and the frame's.</summary>
    private static string FrameLine(TopicMessageInfo info, CameraFrameHeader header) => string.Create(CultureInfo.InvariantCulture,
        $"frame id={info.Id} clock={info.Clock} time={info.TimeUtc:HH:mm:ss.ffffff} size={info.Size} zerocopy={(info.ZeroCopy ? "yes" : "no")} hash={info.Hash:x16} dropped={info.Dropped} seq={header.Sequence} pixels={header.PixelBytes} exposure={header.ExposureMicroseconds}us");

    /// <summary>What a subscriber checks of each message: the next id, nothing dropped, the header, the pixels, the zero-copy flag.</summary>
    private sealed class FrameTracker(int count)
    {
        public int Received { get; private set; }

        public bool OnReceive(TopicMessageInfo info, ReadOnlySpan<byte> payload)
        {
            if (payload.Length < CameraFrameHeader.Size)
            {
                Console.WriteLine($"error: message {info.Id} has {payload.Length} bytes, less than a frame header");
                return false;
            }

            CameraFrameHeader header = MemoryMarshal.Read<CameraFrameHeader>(payload);
            Console.WriteLine(FrameLine(info, header));
            bool full = info.Id == CopiedFrameId(count) || info.Id == LoanedFrameId(count);
            string? error =
                info.Id != Received ? $"message {info.Id} came where {Received} was next" :
                info.Dropped != 0 ? $"{info.Dropped} messages were lost before {info.Id}" :
                header.Sequence != info.Id ? $"message {info.Id} carries frame {header.Sequence}" :
                info.Size != CameraFrameHeader.Size + header.PixelBytes || header.PixelBytes != (full ? FramePixelBytes : 0) ? $"message {info.Id} has {info.Size} bytes and {header.PixelBytes} pixel bytes" :
                info.ZeroCopy != (info.Id == LoanedFrameId(count)) ? $"message {info.Id}'s zero-copy flag is {info.ZeroCopy}" :
                info.Hash == 0 ? $"message {info.Id} carries no hash" :
                !CameraFrameHeader.PixelsIntact(header.Sequence, payload[CameraFrameHeader.Size..]) ? $"message {info.Id}'s pixels are damaged" :
                null;
            if (error is not null)
            {
                Console.WriteLine($"error: {error}");
                return false;
            }

            Received++;
            return true;
        }
    }
}
