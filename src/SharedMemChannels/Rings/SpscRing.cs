using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Rings;

/// <summary>
/// A single-producer single-consumer ring of <typeparamref name="T"/> inline in segment memory. One
/// instance serves one side at a time (the writer, or the reader, of a process); the channel layer
/// enforces "one writer, one reader" across processes.
/// </summary>
/// <remarks>
/// Head and tail are 64-bit counters that only grow (2^63 items never wrap); the slot of position p is
/// p &amp; (slots - 1), so a garbage counter can only select a slot inside the block. The writer stores
/// the element, then publishes the tail with a release store; the reader loads the tail with an
/// acquire load before reading the element, and frees the slot by a release store of the head after
/// copying it out. Each side keeps the other side's index cached in this process and re-reads it
/// (one cross-core line transfer) only when the cache says full or empty. The bound users see is
/// exactly <see cref="Capacity"/>, checked against the counters, not the power-of-two slot count.
/// A writer or reader that dies leaves its counter at the last completed operation: nothing half-done
/// is visible, and a successor continues from the shared counters. Drop modes that take from the
/// reader's end (DropOldest, DropNewest) need the MPMC ring's claims and use it; this ring supports
/// Wait and DropWrite (the caller drops when <see cref="TryWrite"/> says full).
/// </remarks>
internal sealed class SpscRing<T> : IRing<T>
    where T : unmanaged
{
    private readonly SegmentMemory _memory;
    private readonly RingHeader _header;
    private readonly long _tailOffset;
    private readonly long _headOffset;
    private readonly long _mask;
    private readonly int _capacity;
    private long _cachedHead; // the reader's index as this writer last saw it
    private long _cachedTail; // the writer's index as this reader last saw it

    private SpscRing(RingHeader header)
    {
        _header = header;
        _memory = header.Memory;
        _tailOffset = header.Offset + RingLayout.TailOffset;
        _headOffset = header.Offset + RingLayout.HeadOffset;
        _mask = header.SlotCount - 1;
        _capacity = header.Capacity;
    }

    /// <summary>The size of <typeparamref name="T"/> in a ring (its unmanaged size).</summary>
    public static int ElementSize { get; } = RuntimeHelpers.SizeOf(typeof(T).TypeHandle);

    public RingHeader Header => _header;

    public int Capacity => _capacity;

    /// <summary>The bytes a ring of <paramref name="capacity"/> needs, from a line-aligned start.</summary>
    public static long RequiredBytes(int capacity) => RingLayout.RequiredBytes(RingKind.Spsc, ElementSize, capacity);

    /// <summary>Lays out a new, empty ring in the block.</summary>
    public static SpscRing<T> Create(SegmentMemory memory, long offset, long length, int capacity, ProcessTable processes) =>
        new(RingHeader.Initialize(memory, offset, length, RingKind.Spsc, ElementSize, capacity, processes));

    /// <summary>Attaches to an existing ring, checking its header.</summary>
    public static SpscRing<T> Attach(SegmentMemory memory, long offset, long length, ProcessTable processes) =>
        new(RingHeader.Attach(memory, offset, length, RingKind.Spsc, ElementSize, processes));

    /// <summary>Appends an item; false when <see cref="Capacity"/> items are in the ring. Writer side only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public bool TryWrite(in T item)
    {
        // Our own counter: only we write it, but a predecessor in another process may have, so it is read
        // from the ring, not cached (Volatile: plain would do for our own stores, but not for a predecessor's).
        long tail = Volatile.Read(ref _memory.Int64(_tailOffset));
        if ((ulong)(tail - _cachedHead) >= (ulong)_capacity)
        {
            _cachedHead = ReadHeadChecked(tail);
            if (tail - _cachedHead == _capacity)
            {
                return false;
            }
        }

        _memory.Ref<T>(_header.SlotAt(tail & _mask)) = item;
        // Release: the element is visible before the new tail. The written counter is on the same line.
        Volatile.Write(ref _memory.Int64(_tailOffset), tail + 1);
        Volatile.Write(ref _header.WrittenWord, tail + 1);
        _header.ReadersEvent.Signal();
        return true;
    }

    /// <summary>Takes the oldest item; false when the ring is empty. Reader side only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public bool TryRead(out T item)
    {
        long head = Volatile.Read(ref _memory.Int64(_headOffset));
        if (head < 0 || (ulong)(_cachedTail - head) - 1 >= (ulong)_capacity)
        {
            // Empty by the cache (or the cache is out of range): one acquire load of the writer's line.
            _cachedTail = ReadTailChecked(head);
            if (_cachedTail == head)
            {
                item = default;
                return false;
            }
        }

        item = _memory.Ref<T>(_header.SlotAt(head & _mask));
        // Release: the copy above is done before the writer may reuse the slot.
        Volatile.Write(ref _memory.Int64(_headOffset), head + 1);
        Volatile.Write(ref _header.ReadWord, head + 1);
        _header.WritersEvent.Signal();
        return true;
    }

    /// <summary>For a channel: Wait and DropWrite only (the other modes take from the reader's end, which needs MPMC claims).</summary>
    RingStatus IRing<T>.TryWrite(in T item, BoundedChannelFullMode mode, out T dropped)
    {
        dropped = default;
        if (TryWrite(in item))
        {
            return RingStatus.Success;
        }

        switch (mode)
        {
            case BoundedChannelFullMode.Wait:
                return RingStatus.Full;
            case BoundedChannelFullMode.DropWrite:
                Interlocked.Increment(ref _header.DroppedWord);
                dropped = item;
                return RingStatus.DroppedItem;
            default:
                throw new NotSupportedException($"An SPSC ring cannot {mode}: that takes from the reader's end.");
        }
    }

    RingStatus IRing<T>.TryRead(out T item) => TryRead(out item) ? RingStatus.Success : RingStatus.Empty;

    /// <summary>Copies the oldest item without taking it; false when empty. Reader side only.</summary>
    public bool TryPeek(out T item)
    {
        long head = Volatile.Read(ref _memory.Int64(_headOffset));
        _cachedTail = ReadTailChecked(head);
        if (_cachedTail == head)
        {
            item = default;
            return false;
        }

        item = _memory.Ref<T>(_header.SlotAt(head & _mask));
        return true;
    }

    /// <summary>Items in the ring now (a snapshot; either side may call it).</summary>
    public int Count
    {
        get
        {
            long head = Volatile.Read(ref _memory.Int64(_headOffset));
            long tail = ReadTailChecked(head);
            // The reader may have moved on between the two loads; the count is a snapshot either way.
            return (int)Math.Min(tail - head, _capacity);
        }
    }

    private long ReadHeadChecked(long tail)
    {
        long head = Volatile.Read(ref _memory.Int64(_headOffset));
        if (head < 0 || tail < head || tail - head > _capacity)
        {
            _header.ThrowDamaged($"SPSC head {head} and tail {tail} are impossible for capacity {_capacity}");
        }

        return head;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private long ReadTailChecked(long head)
    {
        // Acquire: what the writer stored before this tail is visible after it.
        long tail = Volatile.Read(ref _memory.Int64(_tailOffset));
        if (head < 0 || tail < head || tail - head > _capacity)
        {
            // Read again: the head may have moved (another side's Count) between our two loads.
            RecheckTail(head, tail);
        }

        return tail;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecheckTail(long head, long tail)
    {
        long again = Volatile.Read(ref _memory.Int64(_headOffset));
        if (again < 0 || tail < again || tail - again > _capacity)
        {
            _header.ThrowDamaged($"SPSC head {head} and tail {tail} are impossible for capacity {_capacity}");
        }
    }
}
