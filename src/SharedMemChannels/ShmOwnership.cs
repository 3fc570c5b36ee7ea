namespace SharedMemChannels;

/// <summary>Who owns a heap block: what happens to it when the process that allocated it dies.</summary>
public enum ShmOwnership
{
    /// <summary>
    /// The allocating process owns the block, like memory of its own: it is freed when that process
    /// detaches (disposes the <see cref="SharedSegment"/> it allocated through) or dies without freeing
    /// it. The default for <see cref="SharedSegment.Allocate(int)"/>. Hand the block to the segment
    /// (<see cref="SharedSegment.SetOwnership"/>) before other processes rely on it outliving you.
    /// </summary>
    Process = 0,

    /// <summary>
    /// The segment owns the block: it lives until some process frees it, whatever happens to the
    /// process that allocated it. What named objects and containers use.
    /// </summary>
    Segment = 1,
}
