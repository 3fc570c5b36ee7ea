namespace Shmc.Bench;

/// <summary>What a row measures: one-way latency (median and p99) or a message rate.</summary>
internal enum BenchKind
{
    /// <summary>One-way latency of a 64-byte message: ping-pong round trip / 2, median and p99 in ns.</summary>
    Latency,

    /// <summary>64-byte messages per second through a bounded queue.</summary>
    Throughput,
}

/// <summary>Whether a row's measurement ran.</summary>
internal enum BenchStatus
{
    /// <summary>Measured.</summary>
    Ok,

    /// <summary>Not run on this machine (for example no C compiler); the notes say why.</summary>
    Unavailable,

    /// <summary>Ran and failed; the notes say how.</summary>
    Failed,
}

/// <summary>
/// One row of <c>shmc bench</c>: one implementation measured in one scenario. References (the C ring,
/// the C futex ping-pong, the naive C# mapped ring, the in-process BCL channel) and the rows they are
/// references of (the SharedChannel rows) have the same shape, so that every row prints beside the
/// references of its scenario with ratios.
/// </summary>
/// <param name="Scenario">The scenario id (see <see cref="BenchScenario"/>).</param>
/// <param name="Id">The implementation's id, stable across runs (for example <c>c-spsc-ring</c>).</param>
/// <param name="Description">What ran, in a few words.</param>
/// <param name="IsReference">True for a reference; false for a row measured against the references.</param>
/// <param name="Status">Whether it ran.</param>
/// <param name="Messages">Round trips (latency) or messages (throughput) actually measured.</param>
/// <param name="Complete">False when the time cap stopped the row before its count.</param>
/// <param name="MedianNs">Latency rows: median one-way latency in ns.</param>
/// <param name="P99Ns">Latency rows: 99th percentile one-way latency in ns.</param>
/// <param name="MeanNs">Latency rows: mean one-way latency in ns.</param>
/// <param name="MessagesPerSecond">Throughput rows: messages per second.</param>
/// <param name="Notes">How it was measured, or why it did not run.</param>
internal sealed record BenchRow(
    string Scenario,
    string Id,
    string Description,
    bool IsReference,
    BenchStatus Status,
    long Messages,
    bool Complete,
    double? MedianNs,
    double? P99Ns,
    double? MeanNs,
    double? MessagesPerSecond,
    string Notes)
{
    /// <summary>A latency row from its measurement.</summary>
    public static BenchRow FromLatency(BenchEntry entry, LatencyResult result, long requested, string notes) => new(
        entry.Scenario.Id, entry.Id, entry.Description, entry.IsReference, BenchStatus.Ok, result.Count, result.Count >= requested,
        result.MedianNs, result.P99Ns, result.MeanNs, null, notes);

    /// <summary>A throughput row from its measurement.</summary>
    public static BenchRow FromThroughput(BenchEntry entry, long messages, double seconds, long requested, string notes) => new(
        entry.Scenario.Id, entry.Id, entry.Description, entry.IsReference, BenchStatus.Ok, messages, messages >= requested,
        null, null, null, seconds > 0 ? messages / seconds : null, notes);

    /// <summary>A row that did not run here.</summary>
    public static BenchRow Unavailable(BenchEntry entry, string why) => new(
        entry.Scenario.Id, entry.Id, entry.Description, entry.IsReference, BenchStatus.Unavailable, 0, false, null, null, null, null, why);

    /// <summary>A row whose measurement failed.</summary>
    public static BenchRow Failed(BenchEntry entry, string why) => new(
        entry.Scenario.Id, entry.Id, entry.Description, entry.IsReference, BenchStatus.Failed, 0, false, null, null, null, null, why);

    /// <summary>The figure ratios are taken of: the median for latency, the rate for throughput.</summary>
    public double? Figure => MedianNs ?? MessagesPerSecond;
}

/// <summary>One-way latency percentiles of a ping-pong run.</summary>
internal readonly record struct LatencyResult(long Count, double MedianNs, double P99Ns, double MeanNs)
{
    /// <summary>
    /// Percentiles of round trips given in <see cref="System.Diagnostics.Stopwatch"/> ticks, halved into
    /// one-way nanoseconds; nearest rank, as in the C references. Sorts <paramref name="roundTrips"/>.
    /// </summary>
    public static LatencyResult FromRoundTrips(Span<long> roundTrips)
    {
        if (roundTrips.IsEmpty)
        {
            throw new InvalidOperationException("no round trip was measured within the time cap");
        }

        roundTrips.Sort();
        double toOneWayNs = 1e9 / System.Diagnostics.Stopwatch.Frequency / 2;
        double sum = 0;
        foreach (long t in roundTrips)
        {
            sum += t;
        }

        return new LatencyResult(
            roundTrips.Length,
            Rank(roundTrips, 0.50) * toOneWayNs,
            Rank(roundTrips, 0.99) * toOneWayNs,
            sum / roundTrips.Length * toOneWayNs);
    }

    private static long Rank(ReadOnlySpan<long> sorted, double p)
    {
        int rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank, 1, sorted.Length) - 1];
    }
}
