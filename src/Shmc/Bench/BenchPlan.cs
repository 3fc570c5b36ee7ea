namespace Shmc.Bench;

/// <summary>A scenario of <c>shmc bench</c>: rows in one scenario are compared with each other.</summary>
/// <param name="Id">Stable id, used in the JSON and the table.</param>
/// <param name="Title">What is measured, in a few words.</param>
/// <param name="Kind">Latency or throughput.</param>
internal sealed record BenchScenario(string Id, string Title, BenchKind Kind)
{
    /// <summary>One-way latency, the reader spinning (one PAUSE per failed poll).</summary>
    public static readonly BenchScenario LatencySpin = new("latency-spin", "one-way latency, spinning reader", BenchKind.Latency);

    /// <summary>One-way latency, the reader asleep in the kernel (futex) until woken.</summary>
    public static readonly BenchScenario LatencySleep = new("latency-sleep", "one-way latency, sleeping reader (futex)", BenchKind.Latency);

    /// <summary>One-way latency through <c>await ReadAsync</c>.</summary>
    public static readonly BenchScenario LatencyAsync = new("latency-async", "one-way latency, await ReadAsync", BenchKind.Latency);

    /// <summary>One writer and one reader streaming through a bounded queue.</summary>
    public static readonly BenchScenario StreamSpsc = new("stream-spsc", "streaming, 1 writer 1 reader", BenchKind.Throughput);

    /// <summary>Two writers and two readers streaming through one bounded queue.</summary>
    public static readonly BenchScenario StreamMpmc = new("stream-mpmc", "streaming, 2 writers 2 readers", BenchKind.Throughput);

    /// <summary>64-byte records streamed from one process to another.</summary>
    public static readonly BenchScenario Records64 = new("records-64b", "records of 64 B, 1 writer 1 reader", BenchKind.Throughput);

    /// <summary>64 KiB records streamed from one process to another.</summary>
    public static readonly BenchScenario Records64K = new("records-64kib", "records of 64 KiB, 1 writer 1 reader", BenchKind.Throughput);

    /// <summary>1 MiB records streamed from one process to another.</summary>
    public static readonly BenchScenario Records1M = new("records-1mib", "records of 1 MiB, 1 writer 1 reader", BenchKind.Throughput);

    /// <summary>A small record type (a few fields and a string) streamed from one process to another, serialized.</summary>
    public static readonly BenchScenario SerializedTrade = new("serialized-trade", "a record type (4 fields and a string), 1 writer 1 reader", BenchKind.Throughput);

    /// <summary>Keys in a random order through a prioritized channel, read smallest first.</summary>
    public static readonly BenchScenario Prioritized = new("prioritized", "prioritized, 1 writer 1 reader, random keys", BenchKind.Throughput);

    /// <summary>One publisher, four subscribers, every message to every subscriber.</summary>
    public static readonly BenchScenario FanOut = new("fanout-1x4", "fan-out, 1 publisher to 4 subscribers", BenchKind.Throughput);

    /// <summary>Every scenario, in the order of the report.</summary>
    public static IReadOnlyList<BenchScenario> All { get; } = [LatencySpin, LatencySleep, LatencyAsync, StreamSpsc, StreamMpmc, Records64, Records64K, Records1M, SerializedTrade, Prioritized, FanOut];
}

/// <summary>One row to measure: what it is and how to measure it.</summary>
/// <param name="Scenario">The scenario it belongs to.</param>
/// <param name="Id">The implementation's id (the same id in several scenarios is the same implementation).</param>
/// <param name="Description">What runs, in a few words.</param>
/// <param name="IsReference">True for references; the rows they are references of are false.</param>
/// <param name="Measure">Runs the measurement; an exception it throws makes a failed row.</param>
internal sealed record BenchEntry(BenchScenario Scenario, string Id, string Description, bool IsReference, Func<BenchEntry, BenchContext, BenchRow> Measure);

/// <summary>What every measurement shares: the options and the native toolchain (found once per run).</summary>
internal sealed class BenchContext(BenchOptions options, NativeReferences native)
{
    /// <summary>The run's options.</summary>
    public BenchOptions Options { get; } = options;

    /// <summary>The C references, built on first use.</summary>
    public NativeReferences Native { get; } = native;
}

/// <summary>
/// The rows of a run, in order. Within a scenario the references come first, and the first reference
/// that ran is the scenario's baseline (ratio 1.00). Rows measured against the references (the
/// SharedChannel rows) are added to the same list with <c>IsReference: false</c>, right after the
/// references of their scenario, so that each is measured in the same minute as its references.
/// </summary>
internal static class BenchPlan
{
    /// <summary>Every id <c>--only</c> takes: each scenario's, then each row's, once, in the report's order.</summary>
    public static string[] Ids => [.. BenchScenario.All.Select(s => s.Id).Concat(Default.Select(e => e.Id)).Distinct(StringComparer.Ordinal)];

    /// <summary>The ids of a comma-separated list (<c>--only a,b</c>), blanks dropped.</summary>
    public static IReadOnlySet<string> SplitIds(string? list) =>
        (list ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    public static IReadOnlyList<BenchEntry> Default { get; } =
    [
        new(BenchScenario.LatencySpin, NativeReferences.RingId, "C SPSC ring, 2 processes (bench/native/spsc_ring.c)", true,
            (e, c) => c.Native.RunRing(e, latency: true, c.Options)),
        new(BenchScenario.LatencySpin, NaiveMappedRing.Id, "C# ring on MemoryMappedViewAccessor, 2 processes", true,
            (e, c) => NaiveMappedRing.Run(e, latency: true, c.Options)),
        new(BenchScenario.LatencySpin, InProcessChannel.SpinId, "BCL bounded Channel<T>, 2 threads of 1 process, TryRead spin", true,
            (e, c) => InProcessChannel.LatencySpin(e, c.Options)),
        new(BenchScenario.LatencySpin, SharedChannelRows.Id, "SharedChannel<T>, 2 processes, TryWrite + TryRead polled with one PAUSE per failure", false,
            (e, c) => SharedChannelRows.LatencySpin(e, c.Options)),

        new(BenchScenario.LatencySleep, NativeReferences.FutexId, "C futex ping-pong, 2 processes (bench/native/futex_pingpong.c)", true,
            (e, c) => c.Native.RunFutex(e, c.Options)),
        new(BenchScenario.LatencySleep, SharedChannelRows.Id, "SharedChannel<T>, 2 processes, await ReadAsync with SpinCount 0 and YieldCount 0 (sleeps on the futex)", false,
            (e, c) => SharedChannelRows.LatencySleep(e, c.Options)),

        new(BenchScenario.LatencyAsync, InProcessChannel.AsyncId, "BCL bounded Channel<T>, 2 tasks of 1 process, await ReadAsync", true,
            (e, c) => InProcessChannel.LatencyAsync(e, c.Options)),
        new(BenchScenario.LatencyAsync, SharedChannelRows.Id, "SharedChannel<T>, 2 processes, await WriteAsync + await ReadAsync, default spin settings", false,
            (e, c) => SharedChannelRows.LatencyAsync(e, c.Options)),

        new(BenchScenario.StreamSpsc, NativeReferences.RingId, "C SPSC ring, 2 processes (bench/native/spsc_ring.c)", true,
            (e, c) => c.Native.RunRing(e, latency: false, c.Options)),
        new(BenchScenario.StreamSpsc, NaiveMappedRing.Id, "C# ring on MemoryMappedViewAccessor, 2 processes", true,
            (e, c) => NaiveMappedRing.Run(e, latency: false, c.Options)),
        new(BenchScenario.StreamSpsc, InProcessChannel.StreamId, "BCL bounded Channel<T>, 2 tasks of 1 process, TryWrite/TryRead + WaitTo*Async", true,
            (e, c) => InProcessChannel.StreamSpsc(e, c.Options)),
        new(BenchScenario.StreamSpsc, SharedChannelRows.Id, "SharedChannel<T> (SingleReader, SingleWriter), writer here, reader in a 2nd process, TryWrite/TryRead + WaitTo*Async", false,
            (e, c) => SharedChannelRows.StreamSpsc(e, c.Options)),
        new(BenchScenario.StreamSpsc, SharedChannelRows.UnboundedId, "SharedChannel<T> unbounded (SingleReader, SingleWriter, chunks of 1,024 from the heap), writer here, reader in a 2nd process, TryWrite/TryRead + WaitTo*Async", false,
            (e, c) => SharedChannelRows.StreamSpscUnbounded(e, c.Options)),

        new(BenchScenario.StreamMpmc, InProcessChannel.MpmcId, "BCL bounded Channel<T>, 2 writer + 2 reader tasks of 1 process", true,
            (e, c) => InProcessChannel.StreamMpmc(e, c.Options)),
        new(BenchScenario.StreamMpmc, SharedChannelRows.Id, "SharedChannel<T> (MPMC ring), 2 writer tasks here, 2 reader tasks in a 2nd process", false,
            (e, c) => SharedChannelRows.StreamMpmc(e, c.Options)),

        new(BenchScenario.FanOut, TopicRows.BclId, "BCL bounded Channel<T> x4, 1 writer task + 4 reader tasks of 1 process", true,
            (e, c) => TopicRows.Bcl(e, c.Options)),
        new(BenchScenario.FanOut, TopicRows.TopicId, "SharedTopic, publisher here, 4 subscriber processes, ack timeout, eCAL's ack of every message (lossless), 64 B", false,
            (e, c) => TopicRows.Topic(e, c.Options)),
        new(BenchScenario.FanOut, TopicRows.FreeBufferId, "SharedTopic, publisher here, 4 subscriber processes, ack timeout, FreeBuffer policy (lossless), 16 buffers, 64 B", false,
            (e, c) => TopicRows.FreeBuffer(e, c.Options)),
        new(BenchScenario.FanOut, TopicRows.LossyId, "SharedTopic, publisher here, 4 subscriber processes, no ack (lossy), 64 buffers, 64 B", false,
            (e, c) => TopicRows.Lossy(e, c.Options)),

        new(BenchScenario.Records64, RecordRows.CopyId, "SharedRecordChannel, 2 processes, payload copied in and out (a copying transport)", true,
            (e, c) => RecordRows.Run(e, c.Options, 64, copy: true)),
        new(BenchScenario.Records64, RecordRows.ZeroCopyId, "SharedRecordChannel, 2 processes, records filled and read in place (zero copy)", false,
            (e, c) => RecordRows.Run(e, c.Options, 64, copy: false)),
        new(BenchScenario.Records64K, RecordRows.CopyId, "SharedRecordChannel, 2 processes, payload copied in and out (a copying transport)", true,
            (e, c) => RecordRows.Run(e, c.Options, 64 << 10, copy: true)),
        new(BenchScenario.Records64K, RecordRows.ZeroCopyId, "SharedRecordChannel, 2 processes, records filled and read in place (zero copy)", false,
            (e, c) => RecordRows.Run(e, c.Options, 64 << 10, copy: false)),
        new(BenchScenario.Records1M, RecordRows.CopyId, "SharedRecordChannel, 2 processes, payload copied in and out (a copying transport)", true,
            (e, c) => RecordRows.Run(e, c.Options, 1 << 20, copy: true)),
        new(BenchScenario.Records1M, RecordRows.ZeroCopyId, "SharedRecordChannel, 2 processes, records filled and read in place (zero copy)", false,
            (e, c) => RecordRows.Run(e, c.Options, 1 << 20, copy: false)),

        new(BenchScenario.SerializedTrade, SerializedRows.BclId, "BCL bounded Channel<T> of a record type, 2 tasks of 1 process (no serialization)", true,
            (e, c) => SerializedRows.RunBcl(e, c.Options)),
        new(BenchScenario.SerializedTrade, SerializedRows.MemoryPackId, "SharedChannel<T> with MemoryPackSharedSerializer, writer here, reader in a 2nd process", false,
            (e, c) => SerializedRows.RunShared(e, c.Options, "memorypack")),
        new(BenchScenario.SerializedTrade, SerializedRows.JsonId, "SharedChannel<T> with SystemTextJsonSharedSerializer (source-generated), writer here, reader in a 2nd process", false,
            (e, c) => SerializedRows.RunShared(e, c.Options, "stj")),

        new(BenchScenario.Prioritized, PrioritizedRows.BclId, "BCL Channel.CreateUnboundedPrioritized<long>, 2 tasks of 1 process (SingleReader, SingleWriter)", true,
            (e, c) => PrioritizedRows.RunBcl(e, c.Options)),
        new(BenchScenario.Prioritized, PrioritizedRows.SharedId, "SharedChannel.CreateUnboundedPrioritized<long>, writer here, reader in a 2nd process (SingleReader, SingleWriter)", false,
            (e, c) => PrioritizedRows.RunShared(e, c.Options)),
    ];
}
