
namespace Shmc.Bench;

/// <summary>The options of <c>shmc bench</c>.</summary>
internal sealed record BenchOptions
{
    /// <summary>Round trips measured per latency row (after a warm-up that is not measured).</summary>
    public int Messages { get; init; } = 100_000;

    /// <summary>Messages per streaming row (after a warm-up that is not measured).</summary>
    public int StreamMessages { get; init; } = 5_000_000;

    /// <summary>
    /// The time cap of one row: its measurement stops after this long even if the count is not reached
    /// (the row then says how many it measured). Warm-up takes at most a fifth of it on top.
    /// </summary>
    public double Seconds { get; init; } = 2;

    /// <summary>When not empty, only the rows whose id or scenario id is in this set run.</summary>
    public IReadOnlySet<string> Only { get; init; } = new HashSet<string>();

    /// <summary>Print JSON instead of a table.</summary>
    public bool Json { get; init; }
}
