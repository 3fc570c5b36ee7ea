using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using SharedMemChannels;

namespace Shmc;

/// <summary>One demo message: 64 bytes, stamped by the producer with the monotonic clock both processes share.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Tick
{
    public long Sequence;
    public long SentTimestamp; // Stopwatch.GetTimestamp() in the producer: CLOCK_MONOTONIC, the same in every process
    public double Price;
    public double Quantity;
    public long Padding0;
    public long Padding1;
    public long Padding2;
    public long Padding3;
}

/// <summary>
/// <c>shmc demo</c>: the README's first command. This process opens a channel (no segment to set up: the
/// one-line form makes one for it), starts a producer process (this same program) that writes stamped
/// messages into it, and reads them here with <c>await foreach</c>, showing progress while it runs and
/// then the rate and the one-way latency percentiles. Everything it made is removed when both detach.
/// </summary>
internal static class Demo
{
    public const int DefaultMessages = 2_000_000;
    public const double DefaultSeconds = 3;

    public static int Run(string? name, bool child, int messages, double seconds)
    {
        name ??= string.Create(CultureInfo.InvariantCulture, $"demo-{Environment.ProcessId}");
        SharedName.Validate(name, nameof(name));
        return (child ? ProduceAsync(name, messages, seconds) : ConsumeAsync(name, messages, seconds)).GetAwaiter().GetResult();
    }

    private static SharedChannelOptions Options() => new(1024) { SingleReader = true, SingleWriter = true };

    /// <summary>The consumer: starts the producer, reads everything with <c>await foreach</c>, reports.</summary>
    private static async Task<int> ConsumeAsync(string name, int messages, double seconds)
    {
        using SharedChannel<Tick> channel = SharedChannel.OpenOrCreateBounded<Tick>(name, Options());
        Console.WriteLine($"channel '{name}' (capacity {channel.Capacity}, {Marshal.SizeOf<Tick>()}-byte messages) in segment '{channel.Segment.Name}'");
        using Process producer = StartProducer(name, messages, seconds);
        Console.WriteLine($"producer: process {producer.Id}; consumer: this process ({Environment.ProcessId}), reading with await foreach");

        // A producer that fails before it completes the channel must not leave us waiting: complete it for them.
        _ = producer.WaitForExitAsync().ContinueWith(
            _ => channel.Writer.TryComplete(producer.ExitCode == 0 ? null : new InvalidOperationException($"the producer exited with code {producer.ExitCode}")),
            TaskScheduler.Default);

        long[] latencies = new long[messages];
        long count = 0;
        long expected = 0;
        long outOfOrder = 0;
        var clock = Stopwatch.StartNew();
        long nextReport = Stopwatch.Frequency / 4;
        bool interactive = !Console.IsOutputRedirected;
        try
        {
            await foreach (Tick tick in channel.Reader.ReadAllAsync())
            {
            long now = Stopwatch.GetTimestamp();
            if (count < latencies.Length)
            {
                latencies[count] = now - tick.SentTimestamp;
            }

            outOfOrder += tick.Sequence == expected ? 0 : 1;
            expected = tick.Sequence + 1;
            count++;
            if (clock.ElapsedTicks >= nextReport)
            {
                nextReport += Stopwatch.Frequency / 4;
                string line = string.Create(CultureInfo.InvariantCulture, $"  {count,12:N0} messages  {count / clock.Elapsed.TotalSeconds,14:N0} msg/s");
                Console.Write(interactive ? "\r" + line : line + Environment.NewLine);
            }
            }
        }
        catch (ChannelClosedException e)
        {
            // The producer failed (completed for it above) or died (abandoned): say so, not a stack trace.
            return Program.Fail($"the channel closed early: {(e.InnerException ?? e).Message}", Program.ExitFailed);
        }

        double elapsed = clock.Elapsed.TotalSeconds;
        if (interactive)
        {
            Console.WriteLine();
        }

        await producer.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (producer.ExitCode != 0)
        {
            return Program.Fail($"the producer failed: {(await producer.StandardError.ReadToEndAsync().ConfigureAwait(false)).Trim()}", Program.ExitFailed);
        }

        Report(count, elapsed, latencies, (int)Math.Min(count, latencies.Length), outOfOrder);
        return outOfOrder == 0 ? Program.ExitOk : Program.ExitFailed;
    }

    /// <summary>The producer: writes stamped messages until the count or the time is reached, then completes the channel.</summary>
    private static async Task<int> ProduceAsync(string name, int messages, double seconds)
    {
        using SharedChannel<Tick> channel = SharedChannel.OpenOrCreateBounded<Tick>(name, Options());
        long deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        long sequence = 0;
        for (; sequence < messages; sequence++)
        {
            if ((sequence & 1023) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break;
            }

            var tick = new Tick { Sequence = sequence, Price = 100 + (sequence % 100), Quantity = 1, SentTimestamp = Stopwatch.GetTimestamp() };
            if (!channel.Writer.TryWrite(tick))
            {
                await channel.Writer.WriteAsync(tick).ConfigureAwait(false);
            }
        }

        channel.Writer.Complete();
        return Program.ExitOk;
    }

    private static void Report(long count, double seconds, long[] latencies, int measured, long outOfOrder)
    {
        Array.Sort(latencies, 0, measured);
        double Percentile(double p) => measured == 0 ? 0 : latencies[(int)Math.Min(measured - 1, p * measured)] * 1e9 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"received {count:N0} messages in {seconds:F2} s: {count / seconds:N0} messages/s, {outOfOrder} out of order"));
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"one-way latency (send to receive, across processes): p50 {Nanos(Percentile(0.50))}  p90 {Nanos(Percentile(0.90))}  p99 {Nanos(Percentile(0.99))}  p99.9 {Nanos(Percentile(0.999))}  max {Nanos(Percentile(1))}"));
        Console.WriteLine("(a streaming run: latency includes queueing behind earlier messages; `shmc bench` measures ping-pong latency)");
        Console.WriteLine("channel and segment removed with their last process");
    }

    private static string Nanos(double ns) =>
        ns >= 1_000_000 ? string.Create(CultureInfo.InvariantCulture, $"{ns / 1_000_000:F1} ms")
        : ns >= 1_000 ? string.Create(CultureInfo.InvariantCulture, $"{ns / 1_000:F1} us")
        : string.Create(CultureInfo.InvariantCulture, $"{ns:F0} ns");

    private static Process StartProducer(string name, int messages, double seconds)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot tell where this program is.");
        var start = new ProcessStartInfo(self)
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Demo).Assembly.Location); // run as "dotnet shmc.dll"
        }

        foreach (string arg in new[] { "demo", "--child", "--name", name, "--messages", messages.ToString(CultureInfo.InvariantCulture), "--seconds", seconds.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("Could not start the producer process.");
    }
}
