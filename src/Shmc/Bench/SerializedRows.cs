using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using MemoryPack;
using SharedMemChannels;
using SharedMemChannels.MemoryPack;

namespace Shmc.Bench;

/// <summary>
/// The message of the serialized rows: a small record type, a few fields and a string, as an
/// application would send. MemoryPack and System.Text.Json (source-generated) both know it.
/// </summary>
[MemoryPackable]
internal sealed partial record BenchTrade(long Id, string Symbol, double Price, int Quantity, long Ticks)
{
    /// <summary>The symbols trades cycle through (16 of them, so that the writer builds no string per trade).</summary>
    public static readonly string[] Symbols = [.. Enumerable.Range(0, 16).Select(i => string.Create(CultureInfo.InvariantCulture, $"SYM{i:D2}.XPAR"))];

    /// <summary>Trade <paramref name="sequence"/>, the same in every process.</summary>
    public static BenchTrade Make(long sequence) => new(sequence, Symbols[sequence & 15], 100 + (sequence & 1023) * 0.01, (int)(sequence & 255), sequence);

    /// <summary>Whether <paramref name="trade"/> is trade <paramref name="sequence"/>.</summary>
    public static bool IsTrade(BenchTrade trade, long sequence) =>
        trade.Id == sequence && trade.Symbol == Symbols[sequence & 15] && trade.Quantity == (int)(sequence & 255) && trade.Ticks == sequence;
}

/// <summary>System.Text.Json metadata of <see cref="BenchTrade"/> (source-generated).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(BenchTrade))]
internal sealed partial class BenchTradeJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>
/// The serialized rows: <see cref="BenchTrade"/>s streamed from this process to a second shmc process (the
/// hidden <c>bench-peer serialized SEGMENT FORMAT BOUND</c>) through a <see cref="SharedChannel{T}"/> made with
/// a serializer (MemoryPack, or System.Text.Json), beside the same trades through the BCL's bounded
/// <see cref="Channel{T}"/> between two tasks of this process, measured in the same run. Both sides build each
/// trade (the writer) and check it (the reader); the shared channel serializes into a record of the heap and
/// deserializes from it, which is the cost of "any .NET type" on top of crossing the process.
/// </summary>
internal static class SerializedRows
{
    public const string BclId = "bcl-channel-trade";
    public const string MemoryPackId = "shared-memorypack";
    public const string JsonId = "shared-stj";
    public const string PeerKind = "serialized";

    /// <summary>Trades in flight at most: the capacity of both channels.</summary>
    private const int Capacity = 1024;

    private const string ChannelName = "trades";
    private const string ReadyLine = "ready";

    private static int s_rows;

    /// <summary>
    /// Why these rows warm up for a whole time cap (the other rows take a fifth): the serializers' code, the
    /// record path and, across processes, a peer that starts cold all run at tier 0 until the JIT has
    /// recompiled them, which on a loaded 2-vCPU machine took seconds; with a fifth of the cap the serialized
    /// rows measured mostly unoptimized code (0.22 M trades/s through MemoryPack, 2.9 M once warm).
    /// </summary>
    private const string WarmUpNote = "warmed up for a whole time cap first (JIT tiering of the serializer and the peer)";

    private static ISharedSerializer<BenchTrade> SerializerFor(string format) => format switch
    {
        "memorypack" => new MemoryPackSharedSerializer<BenchTrade>(),
        "stj" => new SystemTextJsonSharedSerializer<BenchTrade>(BenchTradeJsonContext.Default.BenchTrade),
        _ => throw new ArgumentException($"unknown format '{format}'", nameof(format)),
    };

    /// <summary>The in-process reference: a writer task and a reader task on a bounded BCL channel of trades.</summary>
    public static BenchRow RunBcl(BenchEntry entry, BenchOptions options)
    {
        long requested = options.StreamMessages;
        long cap = PingPong.Ticks(options.Seconds);
        RunBclOnce(requested, Stopwatch.GetTimestamp() + cap, options.Seconds); // warm-up: see WarmUpNote
        long start = Stopwatch.GetTimestamp();
        long received = RunBclOnce(requested, start + cap, options.Seconds);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return BenchRow.FromThroughput(entry, received, seconds, requested, PingPong.CountNote(received, requested, "trades") + "; each trade a new object, passed by reference; " + WarmUpNote);
    }

    private static long RunBclOnce(long count, long deadline, double capSeconds)
    {
        Channel<BenchTrade> channel = Channel.CreateBounded<BenchTrade>(new BoundedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true });
        Task<long> writer = Task.Run(async () =>
        {
            long sent = await ProduceAsync(channel.Writer, 0, count, deadline).ConfigureAwait(false);
            channel.Writer.TryComplete();
            return sent;
        });
        Task<long> reader = Task.Run(() => ConsumeAsync(channel.Reader, long.MaxValue));
        if (!Task.WhenAll(writer, reader).Wait(TimeSpan.FromSeconds((capSeconds * 3) + 30)))
        {
            channel.Writer.TryComplete();
            throw new TimeoutException("the in-process trade stream did not finish");
        }

        if (reader.Result != writer.Result)
        {
            throw new InvalidOperationException($"{writer.Result} trades written but {reader.Result} read");
        }

        return reader.Result;
    }

    /// <summary>The measured row: the writer here, the reader in a second process, through a serialized shared channel.</summary>
    public static BenchRow RunShared(BenchEntry entry, BenchOptions options, string format)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (shared channels need Linux)");
        }

        string name = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}-serialized-{Interlocked.Increment(ref s_rows)}");
        SharedSegment.Remove(name);
        try
        {
            using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 8 << 20, MaxCapacity = 64 << 20, RemoveOnLastDetach = true });
            using SharedChannel<BenchTrade> channel = SharedChannel.CreateBounded(segment, ChannelName, new SharedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true, MaxRecordSize = 4096 }, SerializerFor(format));
            string bound = ((options.Seconds * 2) + 20).ToString(CultureInfo.InvariantCulture);
            using Process peer = BenchCommand.StartSelf("bench-peer", PeerKind, name, format, bound);
            Task<string> peerErrors = peer.StandardError.ReadToEndAsync();
            try
            {
                PeerProcess.ExpectLine(peer, peerErrors, ReadyLine);
                SharedSegment.Remove(name);
                long requested = options.StreamMessages;
                long cap = PingPong.Ticks(options.Seconds);
                long warm = ProduceAsync(channel.Writer, 0, requested, Stopwatch.GetTimestamp() + cap).GetAwaiter().GetResult(); // see WarmUpNote
                long start = Stopwatch.GetTimestamp();
                long sent = ProduceAsync(channel.Writer, warm, requested, start + cap).GetAwaiter().GetResult();
                channel.Writer.TryComplete();
                long received = PeerProcess.ReadDone(peer, peerErrors);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                PeerProcess.CheckDone(peer, peerErrors, received, warm + sent, "trades");

                string how = $"{(format == "memorypack" ? "MemoryPack" : "System.Text.Json (source-generated)")} into a heap record per trade, deserialized and checked in the 2nd process";
                return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "trades") + "; " + how + "; " + WarmUpNote);
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
        catch (Exception e) when (e is ChannelClosedException or InvalidSegmentException or ArgumentException or OutOfSharedMemoryException or InvalidDataException)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        finally
        {
            SharedSegment.Remove(name);
        }
    }

    /// <summary>Writes trades <paramref name="first"/>.. until <paramref name="count"/> went in or the deadline; returns how many.</summary>
    private static async Task<long> ProduceAsync(ChannelWriter<BenchTrade> writer, long first, long count, long deadline)
    {
        long sent = 0;
        while (sent < count)
        {
            BenchTrade trade = BenchTrade.Make(first + sent);
            while (!writer.TryWrite(trade))
            {
                if (!await writer.WaitToWriteAsync().ConfigureAwait(false))
                {
                    return sent;
                }
            }

            sent++;
            if ((sent & 1023) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break; // the time cap
            }
        }

        return sent;
    }

    /// <summary>Reads and checks trades 0.. until the channel completes (or the deadline, in stopwatch ticks); returns how many.</summary>
    private static async Task<long> ConsumeAsync(ChannelReader<BenchTrade> reader, long deadline)
    {
        long received = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out BenchTrade? trade))
            {
                if (!BenchTrade.IsTrade(trade, received))
                {
                    throw new InvalidOperationException($"expected trade {received}, read {trade}");
                }

                received++;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("the peer's time bound passed");
            }
        }

        return received;
    }

    /// <summary>
    /// The peer: opens the row's channel with the same serializer, says "ready", reads and checks every trade
    /// until the channel completes, then says "done N". Exit 0 when done, 3 when its own time bound passed, 4 on
    /// a lost, repeated or wrong trade.
    /// </summary>
    public static int Peer(string segmentName, string format, string boundSeconds)
    {
        if (format is not ("memorypack" or "stj") ||
            !double.TryParse(boundSeconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double bound) || bound is <= 0 or > 100_000)
        {
            return Program.Fail("bench-peer serialized: bad arguments", Program.ExitUsage);
        }

        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedChannel<BenchTrade> channel = SharedChannel.Open(segment, ChannelName, SerializerFor(format));
        _ = channel.Reader.Count; // attach fully before saying ready
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();
        try
        {
            long received = ConsumeAsync(channel.Reader, Stopwatch.GetTimestamp() + PingPong.Ticks(bound)).GetAwaiter().GetResult();
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeerProcess.DonePrefix}{received}"));
            Console.Out.Flush();
            return 0;
        }
        catch (TimeoutException)
        {
            return 3;
        }
        catch (InvalidOperationException e) when (e is not ChannelClosedException)
        {
            return Program.Fail(e.Message, 4);
        }
    }

}
