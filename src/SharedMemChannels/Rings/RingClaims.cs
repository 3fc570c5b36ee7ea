using SharedMemChannels.Segments;

namespace SharedMemChannels.Rings;

/// <summary>What a claim standing in a ring operation's way turned out to be.</summary>
internal enum ClaimState
{
    /// <summary>The cell word moved on while we looked.</summary>
    Changed,

    /// <summary>Its claimant lives: it finishes in a moment.</summary>
    Alive,

    /// <summary>Its claimant died holding it.</summary>
    Dead,
}

/// <summary>What the claim-naming rings (the MPMC ring and the unbounded chain) share: waiting out a claim, and reading an index.</summary>
internal static class RingClaims
{
    /// <summary>Spins before a claim's holder is looked up in the process table (a /proc read, so not on every pass).</summary>
    public const int SpinsBeforeProbe = 32;

    /// <summary>The largest valid head or tail index: anything above is damage.</summary>
    public const long MaxIndex = 1L << 62;

    /// <summary>A claim stands in our way: spin briefly (a live claimant finishes in nanoseconds), then ask the process table.</summary>
    public static ClaimState Await(ref long word, long seen, ProcessTable processes)
    {
        var spinner = default(SpinWait);
        for (int i = 0; i < SpinsBeforeProbe; i++)
        {
            if (Volatile.Read(ref word) != seen)
            {
                return ClaimState.Changed;
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }

        return processes.IsAlive(RingLayout.ClaimantOf(seen)) ? ClaimState.Alive : ClaimState.Dead;
    }

    /// <summary>Reads a head or tail index, checked.</summary>
    public static long ReadIndex(SegmentMemory memory, long offset, RingHeader header, string ring)
    {
        long value = Volatile.Read(ref memory.Int64(offset));
        if ((ulong)value >= MaxIndex)
        {
            header.ThrowDamaged($"{ring} index {value} is out of range");
        }

        return value;
    }
}
