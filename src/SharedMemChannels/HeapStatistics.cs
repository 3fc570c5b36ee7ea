namespace SharedMemChannels;

/// <summary>A snapshot of a segment's heap, from one walk over its blocks.</summary>
public sealed record HeapStatistics
{
    /// <summary>Bytes the heap spans now (it grows with the segment).</summary>
    public long Capacity { get; init; }

    /// <summary>Bytes in allocated blocks, headers included.</summary>
    public long UsedBytes { get; init; }

    /// <summary>Bytes held in per-thread caches, ready for fast allocation.</summary>
    public long CachedBytes { get; init; }

    /// <summary>Bytes in free blocks.</summary>
    public long FreeBytes { get; init; }

    /// <summary>The largest free block, the most one allocation can get without growing.</summary>
    public long LargestFreeBlock { get; init; }

    /// <summary>All blocks, of every state.</summary>
    public int BlockCount { get; init; }

    /// <summary>Allocated blocks.</summary>
    public int AllocatedBlocks { get; init; }

    /// <summary>Blocks in per-thread caches.</summary>
    public int CachedBlocks { get; init; }

    /// <summary>Free blocks.</summary>
    public int FreeBlocks { get; init; }

    /// <summary>Times the heap was repaired after a process died holding its lock.</summary>
    public long Recoveries { get; init; }

    /// <summary>Dead processes whose blocks were reclaimed.</summary>
    public long Reclaims { get; init; }

    /// <summary>The per-thread caches found in the heap, by owner.</summary>
    public IReadOnlyList<ThreadCacheStatistics> ThreadCaches { get; init; } = [];
}

/// <summary>One thread's cache of small blocks.</summary>
/// <param name="ProcessId">The owning process, or 0 if its slot is no longer attached.</param>
/// <param name="ProcessSlot">The owner's slot in the segment's process table.</param>
/// <param name="ThreadId">The managed thread id of the owning thread.</param>
/// <param name="Blocks">How many blocks it holds.</param>
/// <param name="Bytes">How many bytes those blocks span.</param>
public sealed record ThreadCacheStatistics(int ProcessId, int ProcessSlot, int ThreadId, int Blocks, long Bytes);
