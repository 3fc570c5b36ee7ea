using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels;

namespace Shmc.Bench;

/// <summary>
/// The measured rows: <see cref="SharedChannel{T}"/> between this process and a second shmc process
/// (the hidden <c>bench-peer shared-channel SEGMENT MODE BOUND</c>), in every scenario, with the same
/// 64-byte messages, capacity and loops as the references beside them.
/// </summary>
/// <remarks>
/// Each row makes a segment of its own, <c>bench-PID-MODE-N</c> (<c>/dev/shm/shmc.bench-...</c>), with
/// <see cref="SegmentOptions.RemoveOnLastDetach"/>; its name is removed as soon as the peer has it open
/// (the mappings outlive the name), and again, whatever happened, when the row ends: neither a failed
/// row nor a killed run leaves anything in /dev/shm.
/// </remarks>
internal static class SharedChannelRows
{
    public const string Id = "shared-channel";

    /// <summary>The unbounded channel's row (stream-spsc only): the same loop as <see cref="Id"/>'s, on a chain of chunks.</summary>
    public const string UnboundedId = "shared-channel-unbounded";
    public const string PeerKind = "shared-channel";
    public const int Capacity = InProcessChannel.Capacity;

    private const string Ping = "ping";
    private const string Pong = "pong";
    private const string Data = "data";
    private const string ReadyLine = "ready";

    private static int s_rows;

    /// <summary>How a row's two sides wait; the peer is told by name.</summary>
    internal enum Mode
    {
        /// <summary>Ping-pong; both sides poll <c>TryRead</c> with one PAUSE per failure (as the C ring does).</summary>
        Spin,

        /// <summary>Ping-pong; both sides <c>await ReadAsync</c> with SpinCount 0 and YieldCount 0: asleep on the futex until woken.</summary>
        Sleep,

        /// <summary>Ping-pong; both sides <c>await WriteAsync</c> then <c>await ReadAsync</c>, default options.</summary>
        Async,

        /// <summary>SPSC streaming: this process writes, the peer reads and checks the order.</summary>
        StreamSpsc,

        /// <summary>MPMC streaming: two writer tasks here, two reader tasks in the peer.</summary>
        StreamMpmc,

        /// <summary>SPSC streaming through an unbounded channel (chunks of the default 1,024 from the heap).</summary>
        StreamSpscUnbounded,
    }

    public static BenchRow LatencySpin(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.Spin);

    public static BenchRow LatencySleep(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.Sleep);

    public static BenchRow LatencyAsync(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.Async);

    public static BenchRow StreamSpsc(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.StreamSpsc);

    public static BenchRow StreamMpmc(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.StreamMpmc);

    public static BenchRow StreamSpscUnbounded(BenchEntry entry, BenchOptions options) => Run(entry, options, Mode.StreamSpscUnbounded);

    /// <summary>The options both sides use in a mode (the peer opens with the same, so its own wait settings apply).</summary>
    internal static SharedChannelOptions OptionsFor(Mode mode)
    {
        var options = new SharedChannelOptions
        {
            SingleReader = mode != Mode.StreamMpmc,
            SingleWriter = mode != Mode.StreamMpmc,
        };
        if (mode != Mode.StreamSpscUnbounded)
        {
            options.Capacity = Capacity; // an unbounded channel takes none (its chunks have the default size)
            options.FullMode = BoundedChannelFullMode.Wait;
        }
        if (mode == Mode.Sleep)
        {
            // No spinning, no yielding: a read that finds nothing sleeps in the kernel at once, and its
            // continuation runs on the waiter thread that the futex woke (no second hop through the pool).
            options.SpinCount = 0;
            options.YieldCount = 0;
            options.AllowSynchronousContinuations = true;
        }

        return options;
    }

    private static string ModeName(Mode mode) => mode switch
    {
        Mode.Spin => "spin",
        Mode.Sleep => "sleep",
        Mode.Async => "async",
        Mode.StreamSpsc => "stream-spsc",
        Mode.StreamSpscUnbounded => "stream-spsc-unbounded",
        _ => "stream-mpmc",
    };

    private static Mode? ParseMode(string name) => name switch
    {
        "spin" => Mode.Spin,
        "sleep" => Mode.Sleep,
        "async" => Mode.Async,
        "stream-spsc" => Mode.StreamSpsc,
        "stream-mpmc" => Mode.StreamMpmc,
        "stream-spsc-unbounded" => Mode.StreamSpscUnbounded,
        _ => null,
    };

    private static bool IsLatency(Mode mode) => mode is Mode.Spin or Mode.Sleep or Mode.Async;

    private static BenchRow Run(BenchEntry entry, BenchOptions options, Mode mode)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (shared channels need Linux)");
        }

        string name = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}-{ModeName(mode)}-{Interlocked.Increment(ref s_rows)}");
        SharedSegment.Remove(name);
        try
        {
            // Room for two rings of 1,024 64-byte items and the directory; fixed, so that nothing reopens the name.
            const long Bytes = 2L << 20;
            // The unbounded row may grow its queue up to 16 MiB when the writer runs ahead (then TryWrite waits for chunks to be freed).
            long max = mode == Mode.StreamSpscUnbounded ? 16L << 20 : Bytes;
            using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = Bytes, MaxCapacity = max, RemoveOnLastDetach = true });
            SharedChannelOptions channelOptions = OptionsFor(mode);
            using SharedChannel<BenchMessage> first = mode == Mode.StreamSpscUnbounded
                ? SharedChannel.CreateUnbounded<BenchMessage>(segment, Data, channelOptions)
                : SharedChannel.CreateBounded<BenchMessage>(segment, IsLatency(mode) ? Ping : Data, channelOptions);
            using SharedChannel<BenchMessage>? second = IsLatency(mode) ? SharedChannel.CreateBounded<BenchMessage>(segment, Pong, channelOptions) : null;
            string bound = ((options.Seconds * 2) + 20).ToString(CultureInfo.InvariantCulture);
            using Process peer = BenchCommand.StartSelf("bench-peer", PeerKind, name, ModeName(mode), bound);
            Task<string> peerErrors = peer.StandardError.ReadToEndAsync();
            try
            {
                PeerProcess.ExpectLine(peer, peerErrors, ReadyLine, seconds: 60);
                SharedSegment.Remove(name); // both processes have it mapped: nothing is left behind, even if we are killed
                BenchRow row = mode switch
                {
                    Mode.Spin => Spin(entry, options, first, second!),
                    Mode.Sleep => Async(entry, options, first, second!, "await WriteAsync, await ReadAsync; SpinCount 0, YieldCount 0, synchronous continuations (run on the woken waiter thread)"),
                    Mode.Async => Async(entry, options, first, second!, "await WriteAsync, await ReadAsync; default options (SpinCount 100, YieldCount 2)"),
                    _ => Stream(entry, options, first, writers: mode == Mode.StreamMpmc ? 2 : 1, peer, peerErrors),
                };
                first.Writer.TryComplete();
                if (!peer.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    throw new TimeoutException("the peer process did not exit");
                }

                if (peer.ExitCode != 0)
                {
                    throw new InvalidOperationException($"the peer process failed (exit {peer.ExitCode}): {peerErrors.Result.Trim()}");
                }

                return row;
            }
            finally
            {
                first.Writer.TryComplete();
                if (!peer.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    peer.Kill(entireProcessTree: true);
                    peer.WaitForExit();
                }

                _ = peerErrors.Wait(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception e) when (e is ChannelClosedException or ChannelAbandonedException or InvalidSegmentException or ArgumentException)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        finally
        {
            SharedSegment.Remove(name);
        }
    }


    private static BenchRow Spin(BenchEntry entry, BenchOptions options, SharedChannel<BenchMessage> ping, SharedChannel<BenchMessage> pong)
    {
        LatencyResult result = PingPong.Measure(new ChannelSpinSide(ping.Writer, pong.Reader), options.Messages, options.Seconds);
        return BenchRow.FromLatency(entry, result, options.Messages, PingPong.CountNote(result.Count, options.Messages, "round trips") + "; TryWrite, TryRead polled with one PAUSE per failure");
    }

    private static BenchRow Async(BenchEntry entry, BenchOptions options, SharedChannel<BenchMessage> ping, SharedChannel<BenchMessage> pong, string how)
    {
        Task<LatencyResult> pinger = Task.Run(() => InProcessChannel.PingAsync(ping.Writer, pong.Reader, options.Messages, options.Seconds));
        LatencyResult result = InProcessChannel.Finish(pinger, options.Seconds);
        return BenchRow.FromLatency(entry, result, options.Messages, PingPong.CountNote(result.Count, options.Messages, "round trips") + "; " + how);
    }

    /// <summary>
    /// Writes here (one or two tasks, TryWrite and WaitToWriteAsync when full), the peer reads; timed from
    /// the first measured write to the peer having taken the last message (the channel empty again).
    /// </summary>
    private static BenchRow Stream(BenchEntry entry, BenchOptions options, SharedChannel<BenchMessage> channel, int writers, Process peer, Task<string> peerErrors)
    {
        long requested = options.StreamMessages;
        long cap = PingPong.Ticks(options.Seconds);
        long warmup = Math.Min(PingPong.WarmupCount(requested) * 10L, requested);
        long warmSent = Write(channel, 0, warmup, writers, Stopwatch.GetTimestamp() + (cap / 5), options.Seconds);
        Drain(channel, Stopwatch.GetTimestamp() + cap + PingPong.Ticks(2));

        long start = Stopwatch.GetTimestamp();
        long sent = Write(channel, warmSent, requested, writers, start + cap, options.Seconds);
        Drain(channel, Stopwatch.GetTimestamp() + PingPong.Ticks(options.Seconds + 2));
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

        channel.Writer.TryComplete();
        string done = PeerProcess.ExpectLine(peer, peerErrors, PeerProcess.DonePrefix, seconds: 60);
        long received = long.Parse(done.AsSpan(PeerProcess.DonePrefix.Length), CultureInfo.InvariantCulture);
        if (received != warmSent + sent)
        {
            throw new InvalidOperationException($"{warmSent + sent} messages written but {received} read by the peer");
        }

        string how = writers == 1
            ? "1 writer here, 1 reader in the peer process (order checked)"
            : "2 writer tasks here, 2 reader tasks in the peer process (threads, not 4 processes)";
        return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "messages") + "; " + how);
    }

    /// <summary>Writes sequences <paramref name="first"/>.. (split among the writers) and returns how many went in.</summary>
    private static long Write(SharedChannel<BenchMessage> channel, long first, long messages, int writers, long deadline, double capSeconds)
    {
        var producers = new Task<long>[writers];
        for (int w = 0; w < writers; w++)
        {
            long share = (messages / writers) + (w < messages % writers ? 1 : 0);
            long start = first + w;
            producers[w] = Task.Run(() => InProcessChannel.ProduceAsync(channel.Writer, start, writers, share, deadline));
        }

        return InProcessChannel.Finish(Task.WhenAll(producers), capSeconds).Sum();
    }

    /// <summary>Waits until the peer has taken every message written (the channel is empty).</summary>
    private static void Drain(SharedChannel<BenchMessage> channel, long hard)
    {
        int polls = 0;
        while (channel.Reader.Count != 0)
        {
            SpinPause.Once();
            if ((++polls & 1023) == 0 && Stopwatch.GetTimestamp() > hard)
            {
                throw new TimeoutException("the peer stopped reading");
            }
        }
    }

    /// <summary>
    /// The peer: <c>shmc bench-peer shared-channel SEGMENT MODE BOUND</c>. Opens the row's channels (with the
    /// row's options, so that its own wait settings are the row's), says "ready", then echoes (latency) or
    /// reads (streaming) until the parent completes the channel, and says "done N" after streaming. Exit 0
    /// when done, 3 when its own time bound (BOUND seconds) passed, 4 on a lost, repeated or torn message.
    /// </summary>
    public static int Peer(string segmentName, string modeName, string boundSeconds)
    {
        if (ParseMode(modeName) is not { } mode || !double.TryParse(boundSeconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double bound) || bound is <= 0 or > 100_000)
        {
            return Program.Fail("bench-peer shared-channel: bad arguments", Program.ExitUsage);
        }

        using SharedSegment segment = SharedSegment.Open(segmentName);
        SharedChannelOptions options = OptionsFor(mode);
        using SharedChannel<BenchMessage> first = mode == Mode.StreamSpscUnbounded
            ? SharedChannel.OpenOrCreateUnbounded<BenchMessage>(segment, Data, options)
            : SharedChannel.OpenOrCreateBounded<BenchMessage>(segment, IsLatency(mode) ? Ping : Data, options);
        using SharedChannel<BenchMessage>? second = IsLatency(mode) ? SharedChannel.OpenOrCreateBounded<BenchMessage>(segment, Pong, options) : null;
        // Take the ends now, so that a refusal fails here and not in the middle of the row.
        _ = first.Reader.TryPeek(out _);
        if (second is not null && !second.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
        {
            return Program.Fail("the pong channel is completed", Program.ExitFailed);
        }

        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();

        long deadline = Stopwatch.GetTimestamp() + PingPong.Ticks(bound);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(bound));
        try
        {
            switch (mode)
            {
                case Mode.Spin:
                    return SpinEcho(first.Reader, second!.Writer, deadline);
                case Mode.Sleep or Mode.Async:
                    return AwaitEcho(first.Reader, second!.Writer, timeout.Token).GetAwaiter().GetResult();
                default:
                    int readers = mode == Mode.StreamMpmc ? 2 : 1;
                    var consumers = new Task<long>[readers];
                    for (int r = 0; r < readers; r++)
                    {
                        consumers[r] = Task.Run(() => InProcessChannel.ConsumeAsync(first.Reader, checkOrder: readers == 1));
                    }

                    if (!Task.WaitAll(consumers, TimeSpan.FromSeconds(bound)))
                    {
                        return 3;
                    }

                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeerProcess.DonePrefix}{consumers.Sum(c => c.Result)}"));
                    Console.Out.Flush();
                    return 0;
            }
        }
        catch (AggregateException e) when (e.InnerException is InvalidOperationException { Message: var message } && message.StartsWith("expected", StringComparison.Ordinal))
        {
            return Program.Fail(message, 4);
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("expected", StringComparison.Ordinal))
        {
            return Program.Fail(e.Message, 4);
        }
        catch (OperationCanceledException)
        {
            return 3;
        }
    }

    /// <summary>Echoes every ping, polling TryRead with one PAUSE per failure, until the ping channel is completed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int SpinEcho(ChannelReader<BenchMessage> ping, ChannelWriter<BenchMessage> pong, long deadline)
    {
        Task completion = ping.Completion;
        long expected = 0;
        while (true)
        {
            BenchMessage message;
            int polls = 0;
            while (!ping.TryRead(out message))
            {
                SpinPause.Once();
                if ((++polls & 1023) == 0)
                {
                    if (completion.IsCompleted)
                    {
                        return 0;
                    }

                    if (Stopwatch.GetTimestamp() > deadline)
                    {
                        return 3;
                    }
                }
            }

            if (message.Sequence != expected++)
            {
                return Program.Fail($"expected ping {expected - 1}, got {message.Sequence}", 4);
            }

            if (!pong.TryWrite(message))
            {
                return Program.Fail("the pong channel is full", 4);
            }
        }
    }

    /// <summary>Echoes every ping with <c>await ReadAsync</c> and <c>await WriteAsync</c> until the ping channel is completed.</summary>
    private static async Task<int> AwaitEcho(ChannelReader<BenchMessage> ping, ChannelWriter<BenchMessage> pong, CancellationToken timeout)
    {
        long expected = 0;
        while (true)
        {
            BenchMessage message;
            try
            {
                message = await ping.ReadAsync(timeout).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return 0;
            }

            if (message.Sequence != expected++)
            {
                return Program.Fail($"expected ping {expected - 1}, got {message.Sequence}", 4);
            }

            await pong.WriteAsync(message, timeout).ConfigureAwait(false);
        }
    }

}
