using System.Numerics;
using System.Threading.Channels;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Rings;

/// <summary>
/// The queue under a prioritized channel: a binary min-heap of <typeparamref name="T"/> ordered by the
/// channel's comparer, in one heap block of the segment (the element array) that doubles when full and
/// halves when a quarter full, guarded by a <see cref="RobustLock"/>. Layout: <see cref="PriorityLayout"/>.
/// </summary>
/// <remarks>
/// <para>
/// Crash safety: every comparison is made before anything is written. An insert (a remove) first finds,
/// reading only, where its item ends (the target) and which way the sift goes (for a remove, the child
/// taken at each depth, a bit per depth); a comparer that throws leaves the heap untouched. Then the
/// intent record names the item (copied into the record), the hole it starts from, the target and the
/// path, and the new Tail (Head), and only then does anything move: the counter, then one element per
/// step along the path (each move followed by the record's hole moving with it), then the item into the
/// target. Whoever takes the lock over from a holder that died (<see cref="ILockRecovery"/>) finishes the
/// move from the recorded hole, with byte copies and no comparer: a position whose value was copied but
/// whose hole was not moved yet is copied again, so each step is idempotent. An insert announced is
/// therefore always completed (the writer died before its write returned; its item is in the heap, as
/// an MPMC writer's published item is); a remove announced is completed and its item counted Lost (the
/// reader died before returning it). A resize (a new array filled with a copy, then published by the
/// handle's store) is finished or undone in the same way.
/// </para>
/// <para>
/// Damage: every counter, handle and capacity read from shared memory is checked before use (the array
/// through the heap: an allocated block with the array tag and room for its capacity), the recorded
/// hole, target and path must describe a sift inside the heap, and every loop is bounded by the heap's
/// depth; anything else is an <see cref="InvalidSegmentException"/>.
/// </para>
/// </remarks>
internal sealed partial class PriorityRing<T> : IRing<T>, ILockRecovery
    where T : unmanaged
{
    private readonly SegmentAttachment _segment;
    private readonly SegmentMemory _memory;
    private readonly SharedHeap _heap;
    private readonly ProcessTable _processes;
    private readonly OwnerId _me;
    private readonly RingHeader _header;
    private readonly long _root;
    private readonly long _tailOffset;
    private readonly long _headOffset;
    private readonly IComparer<T> _comparer;
    private readonly int _initialCapacity;

    // The array as last checked (a handle of the same value with the same capacity is the same block).
    private ulong _cachedArray;
    private long _cachedCapacity;
    private long _cachedStart;

    private PriorityRing(SegmentAttachment segment, RingHeader header, PriorityOrder<T> order)
    {
        _segment = segment;
        _memory = segment.Memory;
        _heap = segment.Heap;
        _processes = segment.Processes;
        _me = segment.Owner;
        if (_me.IsNone)
        {
            throw new ArgumentException("A prioritized ring user must hold a process-table slot.", nameof(segment));
        }

        _header = header;
        _root = header.Offset;
        _tailOffset = _root + RingLayout.TailOffset;
        _headOffset = _root + RingLayout.HeadOffset;
        _comparer = order.Comparer;
        _initialCapacity = header.Capacity;
    }

    /// <summary>The size of <typeparamref name="T"/> in the array.</summary>
    public static int ElementSize { get; } = SegmentMemory.SizeOf<T>();

    public RingHeader Header => _header;

    /// <summary>No bound: <see cref="int.MaxValue"/>.</summary>
    public int Capacity => int.MaxValue;

    /// <summary>The bytes the ring's own block needs (header, descriptor, intent element), from a line-aligned start.</summary>
    public static long RequiredBytes() => RingLayout.RequiredBytes(RingKind.Prioritized, ElementSize, 1);

    /// <summary>The bytes of an element array of <paramref name="capacity"/> elements of <typeparamref name="T"/>.</summary>
    public static long ArrayBytes(long capacity) => PriorityLayout.ArrayBytes(capacity, ElementSize);

    /// <summary>
    /// Lays out an empty prioritized ring in the block. The element array is made by the first insert
    /// (so a creator that dies leaks nothing); <paramref name="initialCapacity"/> is its first size.
    /// </summary>
    public static PriorityRing<T> Create(SegmentAttachment segment, long offset, long length, int initialCapacity, PriorityOrder<T> order)
    {
        if (initialCapacity is < 1 or > PriorityLayout.MaxInitialCapacity)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(initialCapacity), initialCapacity, $"A prioritized channel starts with room for 1 to {PriorityLayout.MaxInitialCapacity} items.");
        }

        if (ArrayBytes(initialCapacity) > SharedHeap.MaxAllocationSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(initialCapacity), initialCapacity, $"An array of {initialCapacity} elements of {ElementSize} bytes exceeds the largest allocation.");
        }

        SegmentMemory memory = segment.Memory;
        RingHeader header = RingHeader.Initialize(memory, offset, length, RingKind.Prioritized, ElementSize, initialCapacity, segment.Processes);
        memory.Int32(offset + PriorityLayout.InitialCapacityOffset) = initialCapacity;
        Span<byte> identity = memory.Span(offset + PriorityLayout.ComparerIdentityOffset, PriorityLayout.ComparerIdentityCapacity);
        System.Text.Unicode.Utf8.FromUtf16(order.Identity, identity, out _, out int written, replaceInvalidSequences: true, isFinalBlock: true);
        memory.Int32(offset + PriorityLayout.ComparerIdentityLengthOffset) = written;
        Volatile.Write(ref memory.Int64(offset + PriorityLayout.ComparerFingerprintOffset), (long)order.Fingerprint);
        return new PriorityRing<T>(segment, header, order);
    }

    /// <summary>
    /// Attaches to an existing prioritized ring, checking its header and descriptor; a comparer of
    /// another identity than the stored one is an <see cref="InvalidCastException"/>.
    /// </summary>
    public static PriorityRing<T> Attach(SegmentAttachment segment, long offset, long length, PriorityOrder<T> order)
    {
        SegmentMemory memory = segment.Memory;
        RingHeader header = RingHeader.Attach(memory, offset, length, RingKind.Prioritized, ElementSize, segment.Processes);
        int initial = Volatile.Read(ref memory.Int32(offset + PriorityLayout.InitialCapacityOffset));
        if (initial != header.Capacity || initial > PriorityLayout.MaxInitialCapacity)
        {
            header.ThrowDamaged($"impossible prioritized shape (initial capacity {initial} of {header.Capacity})");
        }

        ulong stored = (ulong)Volatile.Read(ref memory.Int64(offset + PriorityLayout.ComparerFingerprintOffset));
        if (stored != order.Fingerprint)
        {
            throw new InvalidCastException(
                $"The prioritized channel's items are ordered by the comparer '{StoredIdentity(memory, offset)}'; this process orders them by '{order.Identity}'. Every process must use the same comparer (give a comparer its identity with ISharedComparer<T>).");
        }

        return new PriorityRing<T>(segment, header, order);
    }

    /// <summary>The stored comparer identity of the prioritized ring at <paramref name="offset"/> (bounded, for messages and tools).</summary>
    public static string StoredIdentity(SegmentMemory memory, long offset)
    {
        int length = Math.Clamp(Volatile.Read(ref memory.Int32(offset + PriorityLayout.ComparerIdentityLengthOffset)), 0, PriorityLayout.ComparerIdentityCapacity);
        return System.Text.Encoding.UTF8.GetString(memory.Span(offset + PriorityLayout.ComparerIdentityOffset, length));
    }

    // ---------------------------------------------------------------- shared words

    private ref long Word(int offset) => ref _memory.Int64(_root + offset);

    private ref int Word32(int offset) => ref _memory.Int32(_root + offset);

    private ref T IntentItem => ref _memory.Ref<T>(_root + PriorityLayout.IntentItemOffset);

    private long ReadIndex(long offset) => RingClaims.ReadIndex(_memory, offset, _header, "prioritized ring");

    /// <summary>Items in the heap now (a snapshot: Tail - Head).</summary>
    public int Count
    {
        get
        {
            long head = ReadIndex(_headOffset);
            long tail = ReadIndex(_tailOffset);
            return (int)Math.Clamp(tail - head, 0, int.MaxValue);
        }
    }

    /// <summary>The element array's capacity now (a snapshot; 0 before the first item).</summary>
    public long ArrayCapacity => Math.Max(0, Volatile.Read(ref Word(PriorityLayout.ArrayCapacityOffset)));

    /// <summary>The ring's start in the segment (for tests that damage the descriptor).</summary>
    internal long RootOffset => _root;

    // ---------------------------------------------------------------- the channel's operations

    /// <summary>
    /// Inserts an item: <see cref="RingStatus.Success"/>, or <see cref="RingStatus.Full"/> when the heap
    /// cannot give a larger array (never because of a bound; <paramref name="mode"/> does not apply).
    /// </summary>
    public RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped)
    {
        dropped = default;
        RingStatus status;
        using (HoldLock())
        {
            status = Insert(in item);
        }

        if (status == RingStatus.Success)
        {
            _header.ReadersEvent.Signal(); // fences before it looks for sleepers
        }

        return status;
    }

    /// <summary>Takes the smallest item: <see cref="RingStatus.Success"/> or <see cref="RingStatus.Empty"/>.</summary>
    public RingStatus TryRead(out T item)
    {
        using (HoldLock())
        {
            return Remove(out item);
        }
    }

    /// <summary>Copies the smallest item without taking it; false when the heap is empty.</summary>
    public bool TryPeek(out T item)
    {
        using (HoldLock())
        {
            long size = Size(out _, out _);
            if (size == 0)
            {
                item = default;
                return false;
            }

            item = Array(out _)[0];
            return true;
        }
    }

    /// <summary>Items in the heap, checked against the array (under the lock).</summary>
    private long Size(out long tail, out long head)
    {
        head = ReadIndex(_headOffset);
        tail = ReadIndex(_tailOffset);
        long size = tail - head;
        long capacity = Volatile.Read(ref Word(PriorityLayout.ArrayCapacityOffset));
        if (size < 0 || size > capacity)
        {
            _header.ThrowDamaged($"the heap holds {size} items in an array of {capacity}");
        }

        return size;
    }

    private RingStatus Insert(in T item)
    {
        long size = Size(out long tail, out _);
        Span<T> a = Array(out long capacity);
        if (size == capacity)
        {
            if (!Resize(GrownCapacity(capacity), size))
            {
                return RingStatus.Full;
            }

            a = Array(out _);
        }

        // Where the item ends, reading only: a comparer that throws leaves everything as it was.
        long target = size;
        while (target > 0)
        {
            long parent = (target - 1) >> 1;
            if (_comparer.Compare(item, a[(int)parent]) >= 0)
            {
                break;
            }

            target = parent;
        }

        IntentItem = item;
        Word(PriorityLayout.IntentHoleOffset) = size;
        Word(PriorityLayout.IntentTargetOffset) = target;
        Word(PriorityLayout.IntentPathOffset) = 0;
        Word(PriorityLayout.IntentIndexOffset) = tail + 1;
        // Release: the record is whole before it is announced; from here on the insert is finished by
        // whoever takes the lock, should we die.
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentInsert);
        PriorityTestHooks.Stepped();
        Volatile.Write(ref _memory.Int64(_tailOffset), tail + 1);
        PriorityTestHooks.Stepped();
        SiftUp(a, size, target, in item);
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentNone);
        Volatile.Write(ref _header.WrittenWord, _header.Written + 1);
        return RingStatus.Success;
    }

    private RingStatus Remove(out T item)
    {
        long size = Size(out _, out long head);
        if (size == 0)
        {
            item = default;
            return RingStatus.Empty;
        }

        Span<T> a = Array(out long capacity);
        item = a[0];
        T last = a[(int)(size - 1)];
        long remaining = size - 1;

        // The sift-down's path, reading only (positions below the hole are never moved before they are read).
        long hole = 0;
        long path = 0;
        while (true)
        {
            long left = (2 * hole) + 1;
            if (left >= remaining)
            {
                break;
            }

            long child = left;
            if (left + 1 < remaining && _comparer.Compare(a[(int)(left + 1)], a[(int)left]) < 0)
            {
                child = left + 1;
            }

            if (_comparer.Compare(a[(int)child], last) >= 0)
            {
                break;
            }

            if (child != left)
            {
                path |= 1L << Depth(hole);
            }

            hole = child;
        }

        IntentItem = last;
        Word(PriorityLayout.IntentHoleOffset) = 0;
        Word(PriorityLayout.IntentTargetOffset) = hole;
        Word(PriorityLayout.IntentPathOffset) = path;
        Word(PriorityLayout.IntentIndexOffset) = head + 1;
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentRemove);
        PriorityTestHooks.Stepped();
        Volatile.Write(ref _memory.Int64(_headOffset), head + 1);
        PriorityTestHooks.Stepped();
        SiftDown(a, 0, hole, path, in last, remaining);
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentNone);
        Volatile.Write(ref _header.ReadWord, _header.Read + 1);
        if (capacity > _initialCapacity && remaining <= capacity / 4)
        {
            // Shrinking is an economy, never required: a heap that cannot give the smaller array keeps this one.
            Resize(Math.Max(_initialCapacity, capacity / 2), remaining);
        }

        return RingStatus.Success;
    }

    /// <summary>Moves the parents of the hole down until it reaches the target, then puts the item there (no comparisons).</summary>
    private void SiftUp(Span<T> a, long hole, long target, in T item)
    {
        for (int step = 0; hole > target; step++)
        {
            if (step > PriorityLayout.MaxDepth)
            {
                _header.ThrowDamaged($"a sift-up from {hole} does not reach {target}");
            }

            long parent = (hole - 1) >> 1;
            a[(int)hole] = a[(int)parent];
            PriorityTestHooks.Stepped();
            Volatile.Write(ref Word(PriorityLayout.IntentHoleOffset), parent);
            PriorityTestHooks.Stepped();
            hole = parent;
        }

        a[(int)target] = item;
        PriorityTestHooks.Stepped();
    }

    /// <summary>Moves the recorded children up until the hole reaches the target, then puts the item there (no comparisons).</summary>
    private void SiftDown(Span<T> a, long hole, long target, long path, in T item, long remaining)
    {
        for (int step = 0; hole != target; step++)
        {
            int depth = Depth(hole);
            if (step > PriorityLayout.MaxDepth || depth >= 63 || hole > target)
            {
                _header.ThrowDamaged($"a sift-down from {hole} does not reach {target}");
            }

            long child = (2 * hole) + 1 + ((path >> depth) & 1);
            a[(int)hole] = a[(int)child];
            PriorityTestHooks.Stepped();
            Volatile.Write(ref Word(PriorityLayout.IntentHoleOffset), child);
            PriorityTestHooks.Stepped();
            hole = child;
        }

        if (remaining > 0)
        {
            a[(int)target] = item;
            PriorityTestHooks.Stepped();
        }
    }

    private static int Depth(long position) => BitOperations.Log2((ulong)position + 1);

    // ---------------------------------------------------------------- the element array

    /// <summary>The element array, checked (empty before the first item); under the lock.</summary>
    private Span<T> Array(out long capacity)
    {
        ulong handle = (ulong)Volatile.Read(ref Word(PriorityLayout.ArrayOffset));
        capacity = Volatile.Read(ref Word(PriorityLayout.ArrayCapacityOffset));
        if (handle == 0)
        {
            if (capacity != 0)
            {
                _header.ThrowDamaged($"an array capacity of {capacity} without an array");
            }

            return Span<T>.Empty;
        }

        if (handle != _cachedArray || capacity != _cachedCapacity)
        {
            _cachedStart = ArrayStart(_memory, _heap, handle, capacity, ElementSize);
            _cachedArray = handle;
            _cachedCapacity = capacity;
        }

        return _memory.Elements<T>(_cachedStart, (int)capacity);
    }

    /// <summary>Checks an array handle and capacity read from shared memory; the array's start.</summary>
    private static long ArrayStart(SegmentMemory memory, SharedHeap heap, ulong handle, long capacity, int elementSize)
    {
        if (capacity < 1 || PriorityLayout.ArrayBytes(capacity, elementSize) > SharedHeap.MaxAllocationSize)
        {
            return ThrowHelper.ThrowDamaged<long>(memory.Name, $"a prioritized channel's array capacity {capacity} is impossible.");
        }

        long payload;
        int length;
        uint tag;
        try
        {
            payload = heap.GetPayloadOffset(ShmHandle.FromValue(handle), out length, out tag);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return ThrowHelper.ThrowDamaged<long>(memory.Name, $"a prioritized channel's array is not a live block ({e.Message}).");
        }

        if (tag != PriorityLayout.ArrayTag || length < PriorityLayout.ArrayBytes(capacity, elementSize))
        {
            return ThrowHelper.ThrowDamaged<long>(memory.Name, $"a prioritized channel's array is damaged (tag {tag:x8}, {length} bytes for {capacity} elements).");
        }

        return payload;
    }

    /// <summary>The next capacity up: double, or the initial one for a heap without an array.</summary>
    private long GrownCapacity(long capacity) =>
        capacity == 0 ? _initialCapacity : Math.Min(capacity * 2, SharedHeap.MaxAllocationSize / ElementSize);

    /// <summary>
    /// Replaces the array by one of <paramref name="capacity"/> elements holding the first
    /// <paramref name="size"/>; false when the heap cannot give it (the old array stays).
    /// </summary>
    private bool Resize(long capacity, long size)
    {
        if (capacity <= size || ArrayBytes(capacity) > SharedHeap.MaxAllocationSize)
        {
            return false;
        }

        // Ours until it is published: should we die before the intent names it, it goes with our other blocks.
        if (!_heap.TryAllocate((int)ArrayBytes(capacity), ShmOwnership.Process, PriorityLayout.ArrayTag, out ShmHandle fresh))
        {
            return false;
        }

        Span<T> old = Array(out _);
        long start = _heap.GetPayloadOffset(fresh, out _, out _);
        old[..(int)size].CopyTo(_memory.Elements<T>(start, (int)capacity));
        ulong previous = (ulong)Volatile.Read(ref Word(PriorityLayout.ArrayOffset));
        Word(PriorityLayout.IntentNewArrayOffset) = (long)fresh.Value;
        Word(PriorityLayout.IntentOldArrayOffset) = (long)previous;
        Word(PriorityLayout.IntentCapacityOffset) = capacity;
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentResize);
        PriorityTestHooks.Stepped();
        _heap.SetOwnership(fresh, ShmOwnership.Segment);
        PriorityTestHooks.Stepped();
        Volatile.Write(ref Word(PriorityLayout.ArrayOffset), (long)fresh.Value);
        PriorityTestHooks.Stepped();
        Volatile.Write(ref Word(PriorityLayout.ArrayCapacityOffset), capacity);
        PriorityTestHooks.Stepped();
        FreeArrayBlock(_heap, previous);
        PriorityTestHooks.Stepped();
        Interlocked.Increment(ref Word(PriorityLayout.ResizesOffset));
        Volatile.Write(ref Word32(PriorityLayout.IntentOpOffset), PriorityLayout.IntentNone);
        return true;
    }

    /// <summary>Frees an element array block (only a live block with the array tag; anything else is left alone).</summary>
    private static void FreeArrayBlock(SharedHeap heap, ulong handle)
    {
        if (handle == 0)
        {
            return;
        }

        try
        {
            heap.GetPayloadOffset(ShmHandle.FromValue(handle), out _, out uint tag);
            if (tag == PriorityLayout.ArrayTag)
            {
                heap.Free(ShmHandle.FromValue(handle));
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Freed already (or reclaimed with a dead owner).
        }
    }

    /// <summary>
    /// Takes the heap lock. Its holds are a few hundred nanoseconds (a sift), so a contender first polls
    /// the word with a processor pause for about a microsecond (a free word taken by one CAS can have no
    /// dead holder to repair), and only then takes <see cref="RobustLock"/>'s path, which yields, sleeps on
    /// the futex and takes over from a dead holder.
    /// </summary>
    private Scope HoldLock()
    {
        ref int word = ref Word32(PriorityLayout.LockOffset);
        int me = (int)_me.Value;
        for (int i = 0; i < LockPolls; i++)
        {
            if (Volatile.Read(ref word) == 0 && Interlocked.CompareExchange(ref word, me, 0) == 0)
            {
                return new Scope(ref word);
            }

            Thread.SpinWait(4);
        }

        return RobustLock.Enter(ref word, _me, _processes, this);
    }

    /// <summary>Polls of a held heap lock before the robust lock's own (yielding, sleeping) path.</summary>
    private const int LockPolls = 64;
}
