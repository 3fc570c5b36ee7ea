using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Shmc.Bench;

/// <summary>
/// The in-process reference: a bounded <see cref="Channel{T}"/> of the BCL (capacity 1024, full mode
/// Wait) between two threads or tasks of this process, with the same 64-byte messages. It is what a
/// SharedChannel replaces between processes, so its rows say what crossing a process costs on top.
/// </summary>
internal static class InProcessChannel
{
    public const string SpinId = "bcl-channel-spin";
    public const string AsyncId = "bcl-channel-async";
    public const string StreamId = "bcl-channel";
    public const string MpmcId = "bcl-channel-mpmc";
    public const int Capacity = 1024;

    private static Channel<BenchMessage> Create(bool single) => Channel.CreateBounded<BenchMessage>(new BoundedChannelOptions(Capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = single,
        SingleWriter = single,
    });

    /// <summary>Ping-pong between this thread and an echo thread, both spinning on TryRead with one PAUSE per failed poll.</summary>
    public static BenchRow LatencySpin(BenchEntry entry, BenchOptions options)
    {
        Channel<BenchMessage> ping = Create(single: true);
        Channel<BenchMessage> pong = Create(single: true);
        var echo = new SpinEcho(ping.Reader, pong.Writer);
        var thread = new Thread(echo.Run) { IsBackground = true, Name = "shmc bench echo" };
        thread.Start();
        try
        {
            LatencyResult result = PingPong.Measure(new ChannelSpinSide(ping.Writer, pong.Reader), options.Messages, options.Seconds);
            return BenchRow.FromLatency(entry, result, options.Messages, PingPong.CountNote(result.Count, options.Messages, "round trips"));
        }
        finally
        {
            echo.Stop();
            thread.Join(TimeSpan.FromSeconds(10));
            echo.ThrowIfFailed();
        }
    }

    /// <summary>Ping-pong between two tasks, each side <c>await WriteAsync</c> then <c>await ReadAsync</c>.</summary>
    public static BenchRow LatencyAsync(BenchEntry entry, BenchOptions options)
    {
        Channel<BenchMessage> ping = Create(single: true);
        Channel<BenchMessage> pong = Create(single: true);
        Task echo = Task.Run(() => EchoAsync(ping.Reader, pong.Writer));
        Task<LatencyResult> pinger = Task.Run(() => PingAsync(ping.Writer, pong.Reader, options.Messages, options.Seconds));
        try
        {
            LatencyResult result = Finish(pinger, options.Seconds);
            return BenchRow.FromLatency(entry, result, options.Messages, PingPong.CountNote(result.Count, options.Messages, "round trips"));
        }
        finally
        {
            ping.Writer.TryComplete();
            pong.Writer.TryComplete();
            echo.Wait(TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>One writer task and one reader task; the idiomatic loops (TryWrite / TryRead, and WaitTo*Async when they fail).</summary>
    public static BenchRow StreamSpsc(BenchEntry entry, BenchOptions options) => Stream(entry, options, writers: 1, readers: 1);

    /// <summary>Two writer tasks and two reader tasks on one channel.</summary>
    public static BenchRow StreamMpmc(BenchEntry entry, BenchOptions options) => Stream(entry, options, writers: 2, readers: 2);

    private static BenchRow Stream(BenchEntry entry, BenchOptions options, int writers, int readers)
    {
        long requested = options.StreamMessages;
        long cap = PingPong.Ticks(options.Seconds);

        // Warm-up on a channel of its own (the code paths, not the channel, need warming).
        long warmup = Math.Min(PingPong.WarmupCount(requested) * 10L, requested);
        RunStream(warmup, Stopwatch.GetTimestamp() + (cap / 5), writers, readers, options.Seconds);

        long start = Stopwatch.GetTimestamp();
        long received = RunStream(requested, start + cap, writers, readers, options.Seconds);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return BenchRow.FromThroughput(entry, received, seconds, requested, PingPong.CountNote(received, requested, "messages"));
    }

    private static long RunStream(long messages, long deadline, int writers, int readers, double capSeconds)
    {
        Channel<BenchMessage> channel = Create(single: writers == 1 && readers == 1);
        var producers = new Task<long>[writers];
        for (int w = 0; w < writers; w++)
        {
            long share = (messages / writers) + (w < messages % writers ? 1 : 0);
            long first = w;
            producers[w] = Task.Run(() => ProduceAsync(channel.Writer, first, writers, share, deadline));
        }

        var consumers = new Task<long>[readers];
        for (int r = 0; r < readers; r++)
        {
            consumers[r] = Task.Run(() => ConsumeAsync(channel.Reader, checkOrder: readers == 1 && writers == 1));
        }

        Task<long> all = Task.WhenAll(producers).ContinueWith(
            sent =>
            {
                channel.Writer.TryComplete(sent.Exception);
                return sent.Result.Sum();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        try
        {
            long[] counts = Finish(Task.WhenAll(consumers), capSeconds);
            long sent = Finish(all, capSeconds);
            long received = counts.Sum();
            if (received != sent)
            {
                throw new InvalidOperationException($"{sent} messages written but {received} read");
            }

            return received;
        }
        finally
        {
            channel.Writer.TryComplete();
        }
    }

    internal static async Task<long> ProduceAsync(ChannelWriter<BenchMessage> writer, long first, long stride, long count, long deadline)
    {
        long sent = 0;
        for (long sequence = first; sent < count; sequence += stride)
        {
            var message = new BenchMessage(sequence, 0);
            while (!writer.TryWrite(message))
            {
                if (!await writer.WaitToWriteAsync().ConfigureAwait(false))
                {
                    return sent;
                }
            }

            sent++;
            if ((sent & 4095) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break; // the time cap
            }
        }

        return sent;
    }

    internal static async Task<long> ConsumeAsync(ChannelReader<BenchMessage> reader, bool checkOrder)
    {
        long received = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out BenchMessage message))
            {
                if (checkOrder && message.Sequence != received)
                {
                    throw new InvalidOperationException($"expected message {received}, read {message.Sequence}");
                }

                received++;
            }
        }

        return received;
    }

    internal static async Task<LatencyResult> PingAsync(ChannelWriter<BenchMessage> ping, ChannelReader<BenchMessage> pong, int messages, double seconds)
    {
        long cap = PingPong.Ticks(seconds);
        long warmEnd = Stopwatch.GetTimestamp() + (cap / 5);
        int warmup = PingPong.WarmupCount(messages);
        long sequence = 0;
        for (; sequence < warmup && Stopwatch.GetTimestamp() < warmEnd; sequence++)
        {
            await ping.WriteAsync(new BenchMessage(sequence, 0)).ConfigureAwait(false);
            Check(await pong.ReadAsync().ConfigureAwait(false), sequence);
        }

        long[] roundTrips = new long[messages];
        int count = 0;
        long deadline = Stopwatch.GetTimestamp() + cap;
        while (count < messages)
        {
            long t0 = Stopwatch.GetTimestamp();
            await ping.WriteAsync(new BenchMessage(sequence, t0)).ConfigureAwait(false);
            BenchMessage back = await pong.ReadAsync().ConfigureAwait(false);
            long t1 = Stopwatch.GetTimestamp();
            Check(back, sequence++);
            roundTrips[count++] = t1 - t0;
            if (t1 > deadline)
            {
                break; // the time cap
            }
        }

        ping.TryComplete();
        return LatencyResult.FromRoundTrips(roundTrips.AsSpan(0, count));
    }

    private static async Task EchoAsync(ChannelReader<BenchMessage> ping, ChannelWriter<BenchMessage> pong)
    {
        // ReadAsync throughout, as the measured side does; the loop ends when the pinger completes.
        while (await ping.WaitToReadAsync().ConfigureAwait(false))
        {
            BenchMessage message = await ping.ReadAsync().ConfigureAwait(false);
            await pong.WriteAsync(message).ConfigureAwait(false);
        }
    }

    internal static void Check(BenchMessage message, long sequence)
    {
        if (message.Sequence != sequence)
        {
            throw new InvalidOperationException($"expected echo {sequence}, got {message.Sequence}");
        }
    }

    /// <summary>Waits for a measurement task at most the time cap plus a margin for warm-up and a loaded machine.</summary>
    internal static T Finish<T>(Task<T> task, double capSeconds)
    {
        if (!task.Wait(TimeSpan.FromSeconds((capSeconds * 1.2) + 30)))
        {
            throw new TimeoutException("the measurement did not finish within its time cap");
        }

        return task.Result;
    }


    /// <summary>The echo thread of the spinning ping-pong.</summary>
    private sealed class SpinEcho(ChannelReader<BenchMessage> ping, ChannelWriter<BenchMessage> pong)
    {
        private int _stop;
        private Exception? _failure;

        public void Stop() => Volatile.Write(ref _stop, 1);

        public void ThrowIfFailed()
        {
            if (_failure is not null)
            {
                throw new InvalidOperationException($"the echo thread failed: {_failure.Message}", _failure);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run()
        {
            try
            {
                while (Volatile.Read(ref _stop) == 0)
                {
                    if (ping.TryRead(out BenchMessage message))
                    {
                        if (!pong.TryWrite(message))
                        {
                            throw new InvalidOperationException("the pong channel is full");
                        }
                    }
                    else
                    {
                        SpinPause.Once();
                    }
                }
            }
            catch (InvalidOperationException e)
            {
                _failure = e;
            }
        }
    }
}
