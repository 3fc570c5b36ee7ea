using System.Numerics;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Rings;

/// <summary>The prioritized ring's crash recovery, its destruction, and its test hooks.</summary>
internal sealed partial class PriorityRing<T>
{
    // ---------------------------------------------------------------- the lock and its recovery

    /// <summary>
    /// The heap lock's holder died: finish what its intent record announced. An insert or a remove is
    /// finished from the recorded hole along the recorded path (byte copies, no comparer), so the heap
    /// holds its items in heap order again; a remove's item is counted Lost. A resize is finished if the
    /// new array was published (the old one freed), undone otherwise (the new one freed).
    /// </summary>
    void ILockRecovery.RecoverLocked()
    {
        int op = Volatile.Read(ref Word32(PriorityLayout.IntentOpOffset));
        switch (op)
        {
            case PriorityLayout.IntentNone:
                return;
            case PriorityLayout.IntentInsert:
                RecoverInsert();
                break;
            case PriorityLayout.IntentRemove:
                RecoverRemove();
                Interlocked.Increment(ref _header.LostWord);
                break;
            case PriorityLayout.IntentResize:
                RecoverResize();
                break;
            default:
                _header.ThrowDamaged($"prioritized intent {op} is not an intent");
                break;
        }

        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentNone);
    }

    private void RecoverInsert()
    {
        long newTail = Volatile.Read(ref Word(PriorityLayout.IntentIndexOffset));
        long tail = ReadIndex(_tailOffset);
        long head = ReadIndex(_headOffset);
        if (newTail != tail && newTail != tail + 1)
        {
            _header.ThrowDamaged($"an insert's recorded tail {newTail} does not follow the tail {tail}");
        }

        Volatile.Write(ref _memory.Int64(_tailOffset), newTail);
        long size = Size(out _, out _);
        long hole = Volatile.Read(ref Word(PriorityLayout.IntentHoleOffset));
        long target = Volatile.Read(ref Word(PriorityLayout.IntentTargetOffset));
        if (size < 1 || (ulong)hole >= (ulong)size || (ulong)target > (ulong)hole || !IsAncestor(target, hole))
        {
            _header.ThrowDamaged($"an insert's recorded hole {hole} and target {target} do not fit a heap of {size}");
        }

        SiftUp(Array(out _), hole, target, IntentItem);
    }

    private void RecoverRemove()
    {
        long newHead = Volatile.Read(ref Word(PriorityLayout.IntentIndexOffset));
        long head = ReadIndex(_headOffset);
        if (newHead != head && newHead != head + 1)
        {
            _header.ThrowDamaged($"a remove's recorded head {newHead} does not follow the head {head}");
        }

        Volatile.Write(ref _memory.Int64(_headOffset), newHead);
        long remaining = Size(out _, out _);
        Span<T> a = Array(out long capacity);
        long hole = Volatile.Read(ref Word(PriorityLayout.IntentHoleOffset));
        long target = Volatile.Read(ref Word(PriorityLayout.IntentTargetOffset));
        long path = Volatile.Read(ref Word(PriorityLayout.IntentPathOffset));
        bool fits = remaining == 0
            ? hole == 0 && target == 0
            : (ulong)target < (ulong)remaining && (ulong)hole <= (ulong)target && remaining < capacity && IsOnPath(hole, target, path);
        if (!fits)
        {
            _header.ThrowDamaged($"a remove's recorded hole {hole}, target {target} and path {path:x} do not fit a heap of {remaining}");
        }

        SiftDown(a, hole, target, path, IntentItem, remaining);
    }

    private void RecoverResize()
    {
        ulong fresh = (ulong)Volatile.Read(ref Word(PriorityLayout.IntentNewArrayOffset));
        ulong old = (ulong)Volatile.Read(ref Word(PriorityLayout.IntentOldArrayOffset));
        long capacity = Volatile.Read(ref Word(PriorityLayout.IntentCapacityOffset));
        ulong current = (ulong)Volatile.Read(ref Word(PriorityLayout.ArrayOffset));
        if (current == fresh && fresh != 0)
        {
            // Published: finish (the capacity store, the old array's free).
            Volatile.Write(ref Word(PriorityLayout.ArrayCapacityOffset), capacity);
            ArrayStart(_memory, _heap, fresh, capacity, ElementSize);
            FreeArrayBlock(_heap, old);
        }
        else if (current == old)
        {
            FreeArrayBlock(_heap, fresh); // not published: the old array is whole
        }
        else
        {
            _header.ThrowDamaged("the array is neither the one a resize replaced nor the one it made");
        }
    }

    /// <summary>Whether <paramref name="ancestor"/> is <paramref name="node"/> or one of its ancestors.</summary>
    private static bool IsAncestor(long ancestor, long node)
    {
        for (int step = 0; step <= PriorityLayout.MaxDepth && node > ancestor; step++)
        {
            node = (node - 1) >> 1;
        }

        return node == ancestor;
    }

    /// <summary>Whether following <paramref name="path"/> down from <paramref name="hole"/> reaches <paramref name="target"/>.</summary>
    private static bool IsOnPath(long hole, long target, long path)
    {
        for (int step = 0; step <= PriorityLayout.MaxDepth + 1; step++)
        {
            if (hole == target)
            {
                return true;
            }

            int depth = BitOperations.Log2((ulong)hole + 1);
            if (hole > target || depth >= 62)
            {
                return false;
            }

            hole = (2 * hole) + 1 + ((path >> depth) & 1);
        }

        return false;
    }

    // ---------------------------------------------------------------- destroy

    /// <summary>
    /// Calls <paramref name="visit"/> with the offset of every item the prioritized ring at
    /// <paramref name="offset"/> holds (and the item of an insert or remove a dead holder left half done):
    /// for a destroyer that frees what queued items own, without knowing their type. A damaged
    /// descriptor ends the walk.
    /// </summary>
    public static void VisitQueued(SegmentAttachment segment, long offset, long length, Action<long> visit)
    {
        SegmentMemory memory = segment.Memory;
        try
        {
            int elementSize = Volatile.Read(ref memory.Int32(offset + RingLayout.ElementSizeOffset));
            RingHeader.Attach(memory, offset, length, RingKind.Prioritized, elementSize, segment.Processes);
            ulong handle = (ulong)Volatile.Read(ref memory.Int64(offset + PriorityLayout.ArrayOffset));
            long capacity = Volatile.Read(ref memory.Int64(offset + PriorityLayout.ArrayCapacityOffset));
            if (handle == 0)
            {
                return;
            }

            long start = ArrayStart(memory, segment.Heap, handle, capacity, elementSize);
            long tail = Volatile.Read(ref memory.Int64(offset + RingLayout.TailOffset));
            long head = Volatile.Read(ref memory.Int64(offset + RingLayout.HeadOffset));
            int op = Volatile.Read(ref memory.Int32(offset + PriorityLayout.IntentOpOffset));
            long index = Volatile.Read(ref memory.Int64(offset + PriorityLayout.IntentIndexOffset));
            long hole = -1;
            if (op is PriorityLayout.IntentInsert or PriorityLayout.IntentRemove)
            {
                // The item in the record is the one the half-done move carries; its hole holds a copy of another.
                if (op == PriorityLayout.IntentInsert)
                {
                    tail = index;
                }
                else
                {
                    head = index;
                }

                hole = Volatile.Read(ref memory.Int64(offset + PriorityLayout.IntentHoleOffset));
                visit(offset + PriorityLayout.IntentItemOffset);
            }

            long size = tail - head;
            if (size < 0 || size > capacity)
            {
                return;
            }

            for (long i = 0; i < size; i++)
            {
                if (i != hole)
                {
                    visit(start + PriorityLayout.ElementOffset(i, elementSize));
                }
            }
        }
        catch (InvalidSegmentException)
        {
            // A damaged descriptor: what the items own stays with the segment.
        }
    }

    /// <summary>
    /// Frees the element array of the prioritized ring at <paramref name="offset"/> (the channel is being
    /// destroyed, nobody is attached), and an array a dead resizer left behind.
    /// </summary>
    /// <remarks>Independent of <typeparamref name="T"/>: only array-tagged live blocks are freed.</remarks>
    public static void FreeArrays(SegmentAttachment segment, long offset, long length)
    {
        SegmentMemory memory = segment.Memory;
        SharedHeap heap = segment.Heap;
        try
        {
            RingHeader.Attach(memory, offset, length, RingKind.Prioritized, Volatile.Read(ref memory.Int32(offset + RingLayout.ElementSizeOffset)), segment.Processes);
            ulong current = (ulong)Volatile.Read(ref memory.Int64(offset + PriorityLayout.ArrayOffset));
            if (Volatile.Read(ref memory.Int32(offset + PriorityLayout.IntentOpOffset)) == PriorityLayout.IntentResize)
            {
                ulong fresh = (ulong)Volatile.Read(ref memory.Int64(offset + PriorityLayout.IntentNewArrayOffset));
                ulong old = (ulong)Volatile.Read(ref memory.Int64(offset + PriorityLayout.IntentOldArrayOffset));
                FreeArrayBlock(heap, current == fresh ? old : fresh);
            }

            FreeArrayBlock(heap, current);
        }
        catch (InvalidSegmentException)
        {
            // A damaged ring header: its array stays with the segment.
        }
    }

    // ---------------------------------------------------------------- test hooks

    /// <summary>
    /// For tests: the items in array order, under the lock, after checking that every parent sorts at or
    /// before its children (<see cref="InvalidOperationException"/> otherwise).
    /// </summary>
    internal T[] CheckedItemsForTest()
    {
        using (HoldLock())
        {
            long size = Size(out _, out _);
            T[] items = Array(out _)[..(int)size].ToArray();
            for (int i = 1; i < items.Length; i++)
            {
                if (_comparer.Compare(items[(i - 1) / 2], items[i]) > 0)
                {
                    throw new InvalidOperationException($"heap order broken at {i}");
                }
            }

            return items;
        }
    }

    /// <summary>For tests: the element array's block and the bytes of the array it holds now (to copy a moment's state).</summary>
    internal (long Start, int Bytes) ArrayRangeForTest()
    {
        Span<T> a = Array(out long capacity);
        return a.IsEmpty ? (0, 0) : (_cachedStart, (int)ArrayBytes(capacity));
    }
}
