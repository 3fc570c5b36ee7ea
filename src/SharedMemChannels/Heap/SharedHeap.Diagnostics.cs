using SharedMemChannels.Segments;

namespace SharedMemChannels.Heap;

/// <summary>Statistics and the full consistency check.</summary>
internal sealed partial class SharedHeap
{
    /// <summary>Runs <paramref name="action"/> while holding the heap lock (the test host dies in there on purpose).</summary>
    internal void HoldLockForTest(Action action)
    {
        using (HoldLock())
        {
            action();
        }
    }

    /// <summary>Walks the heap under its lock and counts.</summary>
    public HeapStatistics GetStatistics()
    {
        using (HoldLock())
        {
            return Walk(_m, _processes);
        }
    }

    /// <summary>
    /// Walks the blocks of a heap and counts them. Used under the lock, and without it by inspection
    /// tools on a read-only mapping; in that case the picture may be torn, but every read is checked.
    /// </summary>
    internal static HeapStatistics Walk(SegmentMemory m, ProcessTable? processes)
    {
        ref HeapControl control = ref m.Ref<HeapControl>(ControlOffset);
        long used = 0, cached = 0, free = 0, largest = 0;
        int blocks = 0, allocated = 0, cachedBlocks = 0, freeBlocks = 0;
        var caches = new Dictionary<(uint Owner, uint Thread), (int Blocks, long Bytes)>();
        var chain = new BlockChain(m);
        while (chain.MoveNext())
        {
            long size = chain.Size;
            blocks++;
            switch (chain.State)
            {
                case BlockHeader.StateAllocated:
                    allocated++;
                    used += size;
                    break;
                case BlockHeader.StateCached:
                    cachedBlocks++;
                    cached += size;
                    ref BlockHeader block = ref chain.Block;
                    var key = (block.Owner, block.Tag);
                    caches[key] = caches.TryGetValue(key, out var sum) ? (sum.Blocks + 1, sum.Bytes + size) : (1, size);
                    break;
                default:
                    freeBlocks++;
                    free += size;
                    largest = Math.Max(largest, size);
                    break;
            }
        }

        long offset = chain.Offset;
        Dictionary<int, int> pidBySlot = processes?.Snapshot().ToDictionary(s => s.Index, s => s.Pid) ?? [];
        var cacheList = caches
            .Select(kv =>
            {
                var owner = new OwnerId(kv.Key.Owner);
                return new ThreadCacheStatistics(pidBySlot.GetValueOrDefault(owner.Slot), owner.Slot, (int)kv.Key.Thread, kv.Value.Blocks, kv.Value.Bytes);
            })
            .OrderBy(c => c.ProcessSlot).ThenBy(c => c.ThreadId)
            .ToList();

        return new HeapStatistics
        {
            Capacity = offset + BlockHeader.SentinelSize - SegmentLayout.HeapStart,
            UsedBytes = used,
            CachedBytes = cached,
            FreeBytes = free,
            LargestFreeBlock = Math.Max(0, largest - BlockHeader.Size),
            BlockCount = blocks,
            AllocatedBlocks = allocated,
            CachedBlocks = cachedBlocks,
            FreeBlocks = freeBlocks,
            Recoveries = control.Recoveries,
            Reclaims = control.Reclaims,
            ThreadCaches = cacheList,
        };
    }

    /// <summary>
    /// Checks every invariant of the heap under its lock and throws <see cref="InvalidSegmentException"/>
    /// at the first one broken: the chain of blocks reaches the sentinel at the recorded end; no two free
    /// blocks touch; every boundary tag matches; every free block is in exactly the list its size maps to,
    /// with consistent links; the bitmaps match the lists; the counters match.
    /// </summary>
    public void Validate()
    {
        using (HoldLock())
        {
            ValidateLocked();
        }
    }

    private void ValidateLocked()
    {
        ref HeapControl control = ref Control;
        var freeBlocks = new HashSet<long>();
        long freeBytes = 0;
        bool previousFree = false;
        long previousSize = 0;
        var chain = new BlockChain(_m);
        while (true)
        {
            bool more = chain.MoveNext();
            ref BlockHeader block = ref chain.Block;
            uint expectedPrevFree = previousFree ? (uint)(previousSize / BlockHeader.Unit) : 0;
            if (block.PrevFreeUnits != expectedPrevFree)
            {
                ThrowCorrupt(chain.Offset, $"its previous-free tag is {block.PrevFreeUnits}, expected {expectedPrevFree}");
            }

            if (!more)
            {
                if (chain.Offset + BlockHeader.SentinelSize != control.HeapEnd)
                {
                    ThrowCorrupt(chain.Offset, $"the end sentinel is here but the heap end is recorded as {control.HeapEnd}");
                }

                break;
            }

            bool isFree = chain.State == BlockHeader.StateFree;
            if (isFree && previousFree)
            {
                ThrowCorrupt(chain.Offset, "two free blocks touch (not coalesced)");
            }

            if (isFree)
            {
                freeBlocks.Add(chain.Offset);
                freeBytes += chain.Size;
            }

            previousFree = isFree;
            previousSize = chain.Size;
        }

        int listed = 0;
        for (int fl = 0; fl < HeapControl.FlCount; fl++)
        {
            uint slMap = SlBitmap(fl);
            if (((control.FlBitmap >> fl) & 1) != (slMap != 0 ? 1u : 0u))
            {
                ThrowCorrupt(ControlOffset, $"first-level bit {fl} disagrees with its second-level bitmap");
            }

            for (int sl = 0; sl < HeapControl.SlCount; sl++)
            {
                long head = Head(fl, sl);
                if (((slMap >> sl) & 1) != (head != 0 ? 1u : 0u))
                {
                    ThrowCorrupt(ControlOffset, $"bitmap bit ({fl},{sl}) disagrees with its list");
                }

                long previous = 0;
                for (long at = head; at != 0; at = NextFree(at))
                {
                    if (!freeBlocks.Remove(at))
                    {
                        ThrowCorrupt(at, $"list ({fl},{sl}) holds it, but it is not a free block (or is listed twice)");
                    }

                    long size = (long)ReadBlock(at).SizeUnits * BlockHeader.Unit;
                    if (HeapControl.MappingInsert(size) != (fl, sl))
                    {
                        ThrowCorrupt(at, $"its size {size} belongs in another list than ({fl},{sl})");
                    }

                    if (PrevFree(at) != previous)
                    {
                        ThrowCorrupt(at, "its back link is wrong");
                    }

                    previous = at;
                    listed++;
                }
            }
        }

        if (freeBlocks.Count != 0)
        {
            ThrowCorrupt(freeBlocks.First(), "it is free but in no list");
        }

        if (control.FreeBytes != freeBytes || control.FreeBlocks != listed)
        {
            ThrowCorrupt(ControlOffset, $"the counters say {control.FreeBytes} bytes in {control.FreeBlocks} free blocks, the walk found {freeBytes} in {listed}");
        }
    }
}
