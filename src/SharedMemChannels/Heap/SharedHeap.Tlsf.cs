using System.Numerics;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Heap;

/// <summary>The TLSF core. Every method here runs under the heap lock.</summary>
internal sealed partial class SharedHeap
{
    private ref uint SlBitmap(int fl) => ref _m.Ref<uint>(ControlOffset + HeapControl.SlBitmapsOffset + (fl * 4L));

    private ref long Head(int fl, int sl) => ref _m.Int64(ControlOffset + HeapControl.HeadsOffset + (((fl * HeapControl.SlCount) + sl) * 8L));

    private ref long NextFree(long offset) => ref _m.Int64(offset + BlockHeader.NextFreeOffset);

    private ref long PrevFree(long offset) => ref _m.Int64(offset + BlockHeader.PrevFreeOffset);

    /// <summary>
    /// Takes a block of at least <paramref name="blockSize"/> bytes out of the free index, splits off the
    /// rest, and marks it <paramref name="state"/>. Returns its offset, or 0 when no free block is large enough.
    /// </summary>
    private long AllocateLocked(int blockSize, uint state, uint owner, uint length, uint tag)
    {
        long offset = FindFree(blockSize);
        if (offset == 0)
        {
            return 0;
        }

        ref BlockHeader block = ref ReadBlock(offset);
        long size = (long)block.SizeUnits * BlockHeader.Unit;
        if (BlockHeader.StateOf(block.StateGen) != BlockHeader.StateFree || size < blockSize)
        {
            ThrowCorrupt(offset, $"the free index lists it, but it is {BlockHeader.StateName(BlockHeader.StateOf(block.StateGen))} with {size} bytes");
        }

        RemoveFree(offset, size);
        long rest = size - blockSize;
        if (rest >= BlockHeader.MinBlockSize)
        {
            // The tail gets a complete header first; only then does the block shrink, in one store.
            long tail = offset + blockSize;
            WriteFreeHeader(tail, rest);
            Volatile.Write(ref block.SizeUnits, (uint)(blockSize / BlockHeader.Unit));
            InsertFree(tail, rest);
        }

        block.PrevFreeUnits = 0;
        block.Owner = owner;
        block.Length = length;
        block.Tag = tag;
        ref HeapControl control = ref Control;
        uint generation = control.NextGeneration++;
        if ((generation & GenerationMask) == 0)
        {
            generation = control.NextGeneration++;
        }

        Volatile.Write(ref block.StateGen, BlockHeader.Pack(state, generation));
        return offset;
    }

    /// <summary>Puts a block already marked free back into the index, merged with free neighbours.</summary>
    private void ReleaseLocked(long offset)
    {
        ref BlockHeader block = ref ReadBlock(offset);
        long size = (long)block.SizeUnits * BlockHeader.Unit;

        long next = offset + size;
        ref BlockHeader nextBlock = ref ReadBlock(next);
        if (BlockHeader.StateOf(Volatile.Read(ref nextBlock.StateGen)) == BlockHeader.StateFree)
        {
            long nextSize = (long)nextBlock.SizeUnits * BlockHeader.Unit;
            RemoveFree(next, nextSize);
            size += nextSize;
            Volatile.Write(ref block.SizeUnits, (uint)(size / BlockHeader.Unit));
        }

        uint prevUnits = block.PrevFreeUnits;
        if (prevUnits != 0)
        {
            long prevSize = (long)prevUnits * BlockHeader.Unit;
            long prev = offset - prevSize;
            if (prev < HeapStart)
            {
                ThrowCorrupt(offset, "its previous-block size points before the heap");
            }

            ref BlockHeader prevBlock = ref ReadBlock(prev);
            if (BlockHeader.StateOf(prevBlock.StateGen) != BlockHeader.StateFree || prevBlock.SizeUnits != prevUnits)
            {
                ThrowCorrupt(prev, "its boundary tag disagrees with its neighbour");
            }

            RemoveFree(prev, prevSize);
            size += prevSize;
            Volatile.Write(ref prevBlock.SizeUnits, (uint)(size / BlockHeader.Unit));
            offset = prev;
        }

        InsertFree(offset, size);
    }

    private void InsertFree(long offset, long size)
    {
        (int fl, int sl) = HeapControl.MappingInsert(size);
        ref long head = ref Head(fl, sl);
        long first = head;
        NextFree(offset) = first;
        PrevFree(offset) = 0;
        if (first != 0)
        {
            PrevFree(first) = offset;
        }

        head = offset;
        ref HeapControl control = ref Control;
        control.FlBitmap |= 1u << fl;
        SlBitmap(fl) |= 1u << sl;
        ReadBlock(offset + size).PrevFreeUnits = (uint)(size / BlockHeader.Unit);
        control.FreeBytes += size;
        control.FreeBlocks++;
    }

    private void RemoveFree(long offset, long size)
    {
        (int fl, int sl) = HeapControl.MappingInsert(size);
        long next = NextFree(offset);
        long prev = PrevFree(offset);
        if (next != 0)
        {
            CheckListLink(next, offset);
            PrevFree(next) = prev;
        }

        if (prev != 0)
        {
            CheckListLink(prev, offset);
            NextFree(prev) = next;
        }
        else
        {
            ref long head = ref Head(fl, sl);
            if (head != offset)
            {
                ThrowCorrupt(offset, "it is missing from the head of its free list");
            }

            head = next;
            if (next == 0)
            {
                ref uint slMap = ref SlBitmap(fl);
                slMap &= ~(1u << sl);
                if (slMap == 0)
                {
                    Control.FlBitmap &= ~(1u << fl);
                }
            }
        }

        ReadBlock(offset + size).PrevFreeUnits = 0;
        ref HeapControl control = ref Control;
        control.FreeBytes -= size;
        control.FreeBlocks--;
    }

    private void CheckListLink(long linked, long from)
    {
        if (linked < HeapStart || linked % BlockHeader.Unit != 0 || BlockHeader.StateOf(ReadBlock(linked).StateGen) != BlockHeader.StateFree)
        {
            ThrowCorrupt(from, $"its free-list link {linked} is not a free block");
        }
    }

    private long FindFree(long size)
    {
        (int fl, int sl) = HeapControl.MappingSearch(size);
        if (fl >= HeapControl.FlCount)
        {
            return 0;
        }

        ref HeapControl control = ref Control;
        uint slMap = SlBitmap(fl) & (~0u << sl);
        if (slMap == 0)
        {
            uint flMap = fl + 1 < 32 ? control.FlBitmap & (~0u << (fl + 1)) : 0;
            if (flMap == 0)
            {
                return 0;
            }

            fl = BitOperations.TrailingZeroCount(flMap);
            if (fl >= HeapControl.FlCount)
            {
                ThrowCorrupt(ControlOffset, "the first-level bitmap names a list that does not exist");
            }

            slMap = SlBitmap(fl);
        }

        if (slMap == 0)
        {
            ThrowCorrupt(ControlOffset, "a first level is marked non-empty but has no list");
        }

        long offset = Head(fl, BitOperations.TrailingZeroCount(slMap));
        if (offset < HeapStart)
        {
            ThrowCorrupt(ControlOffset, $"a free list head points to {offset}");
        }

        return offset;
    }

    /// <summary>
    /// Makes room for a block of <paramref name="blockSize"/> bytes by growing the segment (doubling, up
    /// to its maximum) and adding the new part to the heap. False when the segment cannot grow enough.
    /// </summary>
    private bool TryGrowLocked(long blockSize)
    {
        ref HeapControl control = ref Control;
        long heapEnd = control.HeapEnd;
        long capacity = Volatile.Read(ref _m.Header.Capacity);
        long max = _m.MaxCapacity;
        long page = Environment.SystemPageSize;
        // The new free block starts where the end sentinel is now, so the heap gains newCapacity - heapEnd,
        // plus whatever free block the sentinel follows, with which the new block merges.
        // FindFree rounds a request up to the next list boundary (at most 1/32 more), so the merged
        // block must reach that, not just the request.
        long tailFree = (long)ReadBlock(heapEnd - BlockHeader.SentinelSize).PrevFreeUnits * BlockHeader.Unit;
        long wanted = blockSize + (blockSize >> HeapControl.SlLog2) + BlockHeader.Unit;
        long needed = heapEnd + Math.Max(0, wanted - tailFree);
        long minimum = (needed + page - 1) / page * page;
        if (minimum > max)
        {
            return false;
        }

        if (capacity < minimum)
        {
            long target = Math.Min(max, Math.Max(minimum, capacity * 2));
            try
            {
                _m.Grow(target);
            }
            catch (OutOfSharedMemoryException) when (target > minimum)
            {
                // Doubling did not fit in the system; the least that serves this request may.
                try
                {
                    _m.Grow(minimum);
                }
                catch (OutOfSharedMemoryException)
                {
                    return false;
                }
            }
            catch (OutOfSharedMemoryException)
            {
                return false;
            }
        }

        ExtendLocked(Volatile.Read(ref _m.Header.Capacity));
        return true;
    }

    /// <summary>Moves the end sentinel to the end of <paramref name="capacity"/> and frees the space in between.</summary>
    private void ExtendLocked(long capacity)
    {
        ref HeapControl control = ref Control;
        long oldSentinel = control.HeapEnd - BlockHeader.SentinelSize;
        long newSentinel = capacity - BlockHeader.SentinelSize;
        if (newSentinel <= oldSentinel)
        {
            return;
        }

        WriteSentinel(newSentinel);
        // The old sentinel turns into a free block: size first, state last, so that a walk sees either
        // the old end or the whole new block.
        ref BlockHeader block = ref ReadBlock(oldSentinel);
        block.Owner = 0;
        block.Length = 0;
        block.Tag = 0;
        Volatile.Write(ref block.SizeUnits, (uint)((newSentinel - oldSentinel) / BlockHeader.Unit));
        Volatile.Write(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, 0));
        control.HeapEnd = capacity;
        ReleaseLocked(oldSentinel);
    }

    private void WriteSentinel(long offset)
    {
        ref BlockHeader sentinel = ref _m.Ref<BlockHeader>(offset);
        sentinel = default;
        sentinel.Check = BlockHeader.CheckFor(offset);
        sentinel.SizeUnits = BlockHeader.SentinelSize / BlockHeader.Unit;
        Volatile.Write(ref sentinel.StateGen, BlockHeader.Pack(BlockHeader.StateSentinel, 0));
    }

    private void WriteFreeHeader(long offset, long size)
    {
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        block.Check = BlockHeader.CheckFor(offset);
        block.SizeUnits = (uint)(size / BlockHeader.Unit);
        block.PrevFreeUnits = 0;
        block.Owner = 0;
        block.Length = 0;
        block.Tag = 0;
        Volatile.Write(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, 0));
    }

    /// <summary>A block header at <paramref name="offset"/>, after checking that one starts there.</summary>
    private ref BlockHeader ReadBlock(long offset)
    {
        if (offset < HeapStart || offset % BlockHeader.Unit != 0)
        {
            ThrowCorrupt(offset, "it is not at a block boundary");
        }

        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        if (block.Check != BlockHeader.CheckFor(offset))
        {
            ThrowCorrupt(offset, "its check value is wrong");
        }

        long size = (long)block.SizeUnits * BlockHeader.Unit;
        if (size < BlockHeader.SentinelSize || offset + size > Volatile.Read(ref _m.Header.Capacity))
        {
            ThrowCorrupt(offset, $"its size {size} does not fit the segment");
        }

        return ref block;
    }

    /// <summary>
    /// Rebuilds the free index from the block chain: every free block (and every block of
    /// <paramref name="reclaim"/>, a dead owner) is merged with its free neighbours and listed again.
    /// </summary>
    private void RebuildLocked(OwnerId reclaim)
    {
        ref HeapControl control = ref Control;
        control.FlBitmap = 0;
        for (int fl = 0; fl < HeapControl.FlCount; fl++)
        {
            SlBitmap(fl) = 0;
            for (int sl = 0; sl < HeapControl.SlCount; sl++)
            {
                Head(fl, sl) = 0;
            }
        }

        control.FreeBytes = 0;
        control.FreeBlocks = 0;

        long runStart = 0;
        long runSize = 0;
        var chain = new BlockChain(_m);
        while (chain.MoveNext())
        {
            ref BlockHeader block = ref chain.Block;
            ulong stateGen = chain.StateGen;
            uint state = chain.State;
            if (!reclaim.IsNone && state != BlockHeader.StateFree &&
                Volatile.Read(ref block.Owner) == reclaim.Value &&
                Interlocked.CompareExchange(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, BlockHeader.GenerationOf(stateGen)), stateGen) == stateGen)
            {
                state = BlockHeader.StateFree;
            }

            if (state == BlockHeader.StateFree)
            {
                if (runSize == 0)
                {
                    runStart = chain.Offset;
                }

                runSize += chain.Size;
            }
            else if (runSize != 0)
            {
                CloseRun(runStart, runSize);
                runSize = 0;
            }
            else
            {
                block.PrevFreeUnits = 0;
            }
        }

        long offset = chain.Offset;
        if (runSize != 0)
        {
            CloseRun(runStart, runSize);
        }
        else
        {
            ReadBlock(offset).PrevFreeUnits = 0;
        }

        control.HeapEnd = offset + BlockHeader.SentinelSize;
    }

    private void CloseRun(long start, long size)
    {
        Volatile.Write(ref ReadBlock(start).SizeUnits, (uint)(size / BlockHeader.Unit));
        InsertFree(start, size);
    }
}
