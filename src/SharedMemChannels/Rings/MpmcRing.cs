using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Rings;

/// <summary>What a ring operation did.</summary>
internal enum RingStatus
{
    /// <summary>Done: the item was written, read or dropped as asked.</summary>
    Success,

    /// <summary>Nothing to read.</summary>
    Empty,

    /// <summary>Capacity items are in the ring (Wait mode), or a slow reader still holds the slot.</summary>
    Full,

    /// <summary>
    /// A live peer holds the cell this operation needs (a writer publishing, a DropNewest replacing):
    /// wait a little (its publish signals the event count) and try again. A dead holder is never
    /// reported here: it is detected through the process table and recovered.
    /// </summary>
    InFlight,

    /// <summary>DropOldest: the oldest item was evicted into <c>dropped</c>; the new item is not written yet, call again.</summary>
    Evicted,

    /// <summary>DropNewest: the newest item was replaced in place by the new one and comes back in <c>dropped</c>.</summary>
    Replaced,

    /// <summary>DropWrite: the ring was full, the new item itself was dropped.</summary>
    DroppedItem,
}

/// <summary>
/// A bounded multi-producer multi-consumer ring of <typeparamref name="T"/> in segment memory, after
/// Dmitry Vyukov's bounded MPMC queue (a sequence per cell), lock-free, with the crash hole closed.
/// </summary>
/// <remarks>
/// <para>
/// The cell word (<see cref="RingLayout"/>) holds the cell's sequence and its claimant in one 64-bit
/// word. A cell's life for position p: free for p (seq p, no claimant) → claimed by a writer (seq p,
/// claimant W) → published (seq p+1, none) → claimed by a reader (seq p+1, claimant R) → free for
/// p + slots. Unlike Vyukov, where the claim is the CAS on the tail and the claimant is anonymous, a
/// writer claims the cell itself with one CAS that names its process (OwnerId), and only then moves the
/// tail; anyone who finds the tail lagging behind a claimed cell moves it for them (helping, as in the
/// Michael-Scott queue), so a claimant that stops anywhere never stalls the indices. Readers do the same
/// with the head.
/// </para>
/// <para>
/// Crashes. A reader stuck on a cell a writer claimed and never published (seq p, claimant W) spins
/// briefly, then asks the process table whether W lives; if W is dead the cell is freed for the next lap
/// and the head moves past it (counted in Skipped; nothing was written, so nothing is lost). A reader
/// that claimed a cell and died leaves (seq p+1, claimant R); the head already moved on (the claimant or
/// a helper moved it), so readers are not blocked, and the writer that needs the cell a lap later finds
/// R dead and frees it. That item is accounted as Lost, not re-delivered: the head is past it and
/// putting it back would reorder the ring or block every reader behind a claim, and a reader releases
/// its cell before returning the item, so an item whose cell is still claimed was never returned to
/// anyone; counting it keeps Written = Read + Dropped + Lost + Count exact.
/// </para>
/// <para>
/// Bound. A writer claims position p only when p - head &lt; Capacity (head only grows, so a stale
/// head errs on the safe side): the observable bound is Capacity exactly, whatever the slot count.
/// </para>
/// <para>
/// Damage. Every index and cell word is untrusted: an index outside [0, 2^62), a sequence more than a
/// lap away from where it can be, or an operation that makes no progress in a million attempts (each
/// failed attempt means another party succeeded, so a healthy ring never comes near) is an
/// <see cref="InvalidSegmentException"/>. Cell offsets are masked, so no value selects memory outside
/// the ring. Sequences compare modulo 2^39: a thread would have to stall between two loads while 2^39
/// items pass through the ring for a stale compare-and-swap to succeed.
/// </para>
/// </remarks>
internal sealed class MpmcRing<T> : IRing<T>
    where T : unmanaged
{
    private const int MaxAttempts = 1 << 20;

    private readonly SegmentMemory _memory;
    private readonly RingHeader _header;
    private readonly ProcessTable _processes;
    private readonly long _claim;
    private readonly long _tailOffset;
    private readonly long _headOffset;
    private readonly long _mask;
    private readonly int _slots;
    private readonly int _capacity;
    private long _cachedHead; // a lower bound of the head, kept by this process's writers

    private MpmcRing(RingHeader header, OwnerId me)
    {
        if (me.IsNone)
        {
            throw new ArgumentException("An MPMC ring user must hold a process-table slot.", nameof(me));
        }

        _header = header;
        _memory = header.Memory;
        _processes = header.Processes;
        _claim = RingLayout.ClaimFor(me);
        _tailOffset = header.Offset + RingLayout.TailOffset;
        _headOffset = header.Offset + RingLayout.HeadOffset;
        _slots = header.SlotCount;
        _mask = _slots - 1;
        _capacity = header.Capacity;
    }

    /// <summary>The size of <typeparamref name="T"/> in a ring.</summary>
    public static int ElementSize { get; } = RuntimeHelpers.SizeOf(typeof(T).TypeHandle);

    public RingHeader Header => _header;

    public int Capacity => _capacity;

    /// <summary>The bytes a ring of <paramref name="capacity"/> needs, from a line-aligned start.</summary>
    public static long RequiredBytes(int capacity) => RingLayout.RequiredBytes(RingKind.Mpmc, ElementSize, capacity);

    /// <summary>Lays out a new, empty ring in the block; <paramref name="me"/> names this process in claims.</summary>
    public static MpmcRing<T> Create(SegmentMemory memory, long offset, long length, int capacity, ProcessTable processes, OwnerId me) =>
        new(RingHeader.Initialize(memory, offset, length, RingKind.Mpmc, ElementSize, capacity, processes), me);

    /// <summary>Attaches to an existing ring, checking its header.</summary>
    public static MpmcRing<T> Attach(SegmentMemory memory, long offset, long length, ProcessTable processes, OwnerId me) =>
        new(RingHeader.Attach(memory, offset, length, RingKind.Mpmc, ElementSize, processes), me);

    /// <summary>Items in the ring now (a snapshot, clamped to [0, Capacity]).</summary>
    public int Count
    {
        get
        {
            long head = ReadIndex(_headOffset);
            long tail = ReadIndex(_tailOffset);
            return (int)Math.Clamp(tail - head, 0, _capacity);
        }
    }

    /// <summary>Appends an item: <see cref="RingStatus.Success"/> or <see cref="RingStatus.Full"/>.</summary>
    public RingStatus TryWrite(in T item)
    {
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            long pos = ReadIndex(_tailOffset);
            if (pos - _cachedHead >= _capacity)
            {
                _cachedHead = ReadIndex(_headOffset);
                if (_cachedHead > pos)
                {
                    // Our tail is behind a head that passed a skipped cell: positions up to the head were claimed.
                    AdvanceTail(pos);
                    continue;
                }

                if (pos - _cachedHead > _capacity)
                {
                    _header.ThrowDamaged($"MPMC tail {pos} is more than the capacity {_capacity} ahead of head {_cachedHead}");
                }

                if (pos - _cachedHead == _capacity)
                {
                    return RingStatus.Full;
                }
            }

            long cell = _header.SlotAt(pos & _mask);
            ref long word = ref _memory.Int64(cell);
            long seen = Volatile.Read(ref word);
            long diff = RingLayout.SequenceDiff(seen, pos);
            long claim = RingLayout.ClaimOf(seen);
            if (diff == 0)
            {
                if (claim == 0)
                {
                    // The claim: one CAS that makes the cell ours and names us, so that a reader can tell a
                    // dead claimant from a slow one. Then the tail (a failed CAS means a helper moved it).
                    if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos, _claim), seen) == seen)
                    {
                        AdvanceTail(pos);
                        Publish(ref word, cell, pos, in item);
                        return RingStatus.Success;
                    }

                    continue;
                }

                AdvanceTail(pos); // a writer claimed pos and has not moved the tail yet: help it
                continue;
            }

            if (diff > 0)
            {
                CheckDiff(diff, pos, seen, _tailOffset, 0);
                AdvanceTail(pos); // the cell is past pos already, so pos was claimed: the tail lags
                continue;
            }

            CheckDiff(diff, pos, seen, _tailOffset, 0);
            if (claim != 0 && diff == 1 - _slots)
            {
                // Position pos - slots is still held by its reader (or a dropping writer): wait for the
                // release, unless the holder is dead, in which case its item is lost and the cell is ours.
                switch (RingClaims.Await(ref word, seen, _processes))
                {
                    case ClaimState.Alive:
                        return RingStatus.Full;
                    case ClaimState.Dead:
                        if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos, 0), seen) == seen)
                        {
                            Interlocked.Increment(ref _header.LostWord);
                        }

                        break;
                }

                continue;
            }

            // A lap behind with no claim: our cached head was too optimistic. Look again.
            _cachedHead = ReadIndex(_headOffset);
            if (pos - _cachedHead >= _capacity)
            {
                return RingStatus.Full;
            }
        }

        return NoProgress();
    }

    /// <summary>Takes the oldest item: <see cref="RingStatus.Success"/>, <see cref="RingStatus.Empty"/> or <see cref="RingStatus.InFlight"/>.</summary>
    public RingStatus TryRead(out T item) => Dequeue(out item, drop: false);

    /// <summary>Appends an item, applying <paramref name="mode"/> when the ring is full (see <see cref="RingStatus"/>).</summary>
    /// <remarks>
    /// DropOldest evicts through the reader's claim protocol: the evicting writer claims the head cell
    /// exactly as a reader would, so each item is taken once, by a reader (delivered) or by a writer
    /// (dropped, counted, handed back), never both, and the rest keeps its order. Eviction and the
    /// following write are two steps: another writer may take the freed slot in between, and the caller
    /// then evicts again; a reader may drain the ring in between, and the eviction then found the ring
    /// no longer full. Either way the evicted item was the oldest when it was taken, and the bound holds
    /// because the write itself goes through the capacity-checked claim. DropNewest replaces the item at
    /// tail - 1 in place under a claim with the replace flag, which readers treat as in flight: removing
    /// the newest and appending the new one lands the new item at the same position, so in place is the
    /// same result in one step.
    /// </remarks>
    public RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped)
    {
        dropped = default;
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            RingStatus status = TryWrite(in item);
            if (status != RingStatus.Full)
            {
                return status;
            }

            switch (mode)
            {
                case BoundedChannelFullMode.Wait:
                    return RingStatus.Full;
                case BoundedChannelFullMode.DropWrite:
                    Interlocked.Increment(ref _header.DroppedWord);
                    dropped = item;
                    return RingStatus.DroppedItem;
                case BoundedChannelFullMode.DropOldest:
                    status = Dequeue(out dropped, drop: true);
                    if (status == RingStatus.Success)
                    {
                        return RingStatus.Evicted;
                    }

                    if (status == RingStatus.InFlight)
                    {
                        return status;
                    }

                    break; // emptied meanwhile: write again
                case BoundedChannelFullMode.DropNewest:
                    status = TryReplaceNewest(in item, out dropped);
                    if (status != RingStatus.Empty)
                    {
                        return status;
                    }

                    break; // not full any more: write again
                default:
                    throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown full mode.");
            }
        }

        return NoProgress();
    }

    /// <summary>Copies the oldest item without taking it; false when nothing is readable now.</summary>
    public bool TryPeek(out T item)
    {
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            long pos = ReadIndex(_headOffset);
            long cell = _header.SlotAt(pos & _mask);
            ref long word = ref _memory.Int64(cell);
            long seen = Volatile.Read(ref word);
            long diff = RingLayout.SequenceDiff(seen, pos + 1);
            CheckDiff(diff, pos, seen, _headOffset, 1);
            if (diff == 0 && RingLayout.ClaimOf(seen) == 0)
            {
                item = _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                // Seqlock-style: the copy counts only if the cell did not change under it. Full fence so
                // the copy's loads are not moved after the re-check on weak memory models.
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref word) == seen)
                {
                    return true;
                }

                continue;
            }

            if (diff > 0 || (diff == 0 && (RingLayout.ClaimOf(seen) & RingLayout.ReplaceFlag) == 0))
            {
                AdvanceHead(pos); // consumed or claimed by a reader: the head lags
                continue;
            }

            break; // empty, or in flight
        }

        item = default;
        return false;
    }

    /// <summary>For tests: claims the next write cell and stops, as a writer killed before publishing would.</summary>
    internal long ClaimWriteForTest()
    {
        while (true)
        {
            long pos = ReadIndex(_tailOffset);
            ref long word = ref _memory.Int64(_header.SlotAt(pos & _mask));
            long seen = Volatile.Read(ref word);
            if (RingLayout.SequenceDiff(seen, pos) == 0 && RingLayout.ClaimOf(seen) == 0 &&
                Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos, _claim), seen) == seen)
            {
                AdvanceTail(pos);
                return pos;
            }

            AdvanceTail(pos);
        }
    }

    /// <summary>For tests: claims the newest item for a DropNewest replace and stops, as a writer killed mid-replace would.</summary>
    internal long ClaimReplaceForTest()
    {
        long pos = ReadIndex(_tailOffset) - 1;
        ref long word = ref _memory.Int64(_header.SlotAt(pos & _mask));
        long seen = Volatile.Read(ref word);
        return RingLayout.SequenceDiff(seen, pos + 1) == 0 && RingLayout.ClaimOf(seen) == 0 &&
            Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 1, _claim | RingLayout.ReplaceFlag), seen) == seen ? pos : -1;
    }

    /// <summary>For tests: claims the next readable cell and stops, as a reader killed mid-read would.</summary>
    internal long ClaimReadForTest()
    {
        while (true)
        {
            long pos = ReadIndex(_headOffset);
            ref long word = ref _memory.Int64(_header.SlotAt(pos & _mask));
            long seen = Volatile.Read(ref word);
            if (RingLayout.SequenceDiff(seen, pos + 1) == 0 && RingLayout.ClaimOf(seen) == 0 &&
                Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 1, _claim), seen) == seen)
            {
                AdvanceHead(pos);
                return pos;
            }

            if (RingLayout.SequenceDiff(seen, pos + 1) < 0)
            {
                return -1; // nothing to claim
            }

            AdvanceHead(pos);
        }
    }

    private RingStatus Dequeue(out T item, bool drop)
    {
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            long pos = ReadIndex(_headOffset);
            long cell = _header.SlotAt(pos & _mask);
            ref long word = ref _memory.Int64(cell);
            long seen = Volatile.Read(ref word);
            long diff = RingLayout.SequenceDiff(seen, pos + 1);
            long claim = RingLayout.ClaimOf(seen);
            if (diff == 0)
            {
                if (claim == 0)
                {
                    if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 1, _claim), seen) == seen)
                    {
                        AdvanceHead(pos);
                        item = _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                        // Release the cell before the item reaches anyone: a cell still claimed by a dead
                        // reader therefore holds an item nobody was given (see the class remarks).
                        Volatile.Write(ref word, RingLayout.CellWord(pos + _slots, 0));
                        // Interlocked: also the full fence EventCount.Signal needs after the release.
                        Interlocked.Increment(ref drop ? ref _header.DroppedWord : ref _header.ReadWord);
                        _header.WritersEvent.Signal();
                        return RingStatus.Success;
                    }

                    continue;
                }

                if ((claim & RingLayout.ReplaceFlag) == 0)
                {
                    AdvanceHead(pos); // another reader took pos and has not moved the head yet
                    continue;
                }

                // A DropNewest writer is replacing this item in place.
                switch (RingClaims.Await(ref word, seen, _processes))
                {
                    case ClaimState.Alive:
                        item = default;
                        return RingStatus.InFlight;
                    case ClaimState.Dead:
                        // Died half way through the copy: the item is torn, so it is lost, not delivered.
                        if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + _slots, 0), seen) == seen)
                        {
                            Interlocked.Increment(ref _header.LostWord);
                            AdvanceHead(pos);
                            _header.WritersEvent.Signal();
                        }

                        break;
                }

                continue;
            }

            if (diff == -1)
            {
                if (claim == 0)
                {
                    item = default;
                    return RingStatus.Empty;
                }

                // A writer claimed pos and has not published. Slow, or dead?
                switch (RingClaims.Await(ref word, seen, _processes))
                {
                    case ClaimState.Alive:
                        item = default;
                        return RingStatus.InFlight;
                    case ClaimState.Dead:
                        // Nothing was written: free the cell for the next lap and step over it. The tail
                        // moves first, in case the writer died before moving it, so head never passes tail.
                        if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + _slots, 0), seen) == seen)
                        {
                            Interlocked.Increment(ref _header.SkippedWord);
                            AdvanceTail(pos);
                            AdvanceHead(pos);
                            _header.WritersEvent.Signal();
                        }

                        break;
                }

                continue;
            }

            CheckDiff(diff, pos, seen, _headOffset, 1);
            if (diff > 0)
            {
                AdvanceHead(pos); // pos was consumed already: the head lags
                continue;
            }

            // A lap behind: the writer of pos has not got here (the ring is empty at pos).
            item = default;
            return RingStatus.Empty;
        }

        item = default;
        return NoProgress();
    }

    /// <summary>
    /// DropNewest on a full ring: replaces the item at tail - 1. <see cref="RingStatus.Empty"/> means the
    /// ring is not full any more (write normally).
    /// </summary>
    private RingStatus TryReplaceNewest(in T item, out T dropped)
    {
        dropped = default;
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            long tail = ReadIndex(_tailOffset);
            long head = ReadIndex(_headOffset);
            if (tail - head < _capacity)
            {
                return RingStatus.Empty;
            }

            long pos = tail - 1;
            long cell = _header.SlotAt(pos & _mask);
            ref long word = ref _memory.Int64(cell);
            long seen = Volatile.Read(ref word);
            long diff = RingLayout.SequenceDiff(seen, pos + 1);
            long claim = RingLayout.ClaimOf(seen);
            CheckDiff(diff, pos, seen, _tailOffset, 0);
            if (diff == 0 && claim == 0)
            {
                if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 1, _claim | RingLayout.ReplaceFlag), seen) == seen)
                {
                    ref T slot = ref _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                    dropped = slot;
                    slot = item;
                    Volatile.Write(ref word, RingLayout.CellWord(pos + 1, 0));
                    Interlocked.Increment(ref _header.DroppedWord);
                    Interlocked.Increment(ref _header.WrittenWord);
                    _header.ReadersEvent.Signal(); // a reader may be waiting on the replace in flight
                    return RingStatus.Replaced;
                }

                continue;
            }

            if (diff == -1 && claim != 0)
            {
                // The newest position is claimed by a writer that has not published.
                switch (RingClaims.Await(ref word, seen, _processes))
                {
                    case ClaimState.Alive:
                        return RingStatus.InFlight;
                    case ClaimState.Dead:
                        // Its item never existed: take the cell over and write ours there. Nothing is dropped.
                        if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos, _claim), seen) == seen)
                        {
                            Interlocked.Increment(ref _header.SkippedWord);
                            Publish(ref word, cell, pos, in item);
                            return RingStatus.Success;
                        }

                        break;
                }

                continue;
            }

            if (diff == 0 && (claim & RingLayout.ReplaceFlag) != 0)
            {
                return RingStatus.InFlight; // another writer is replacing the newest
            }

            // A reader holds the newest (the ring is draining) or our view is stale: look again.
            Thread.SpinWait(1);
        }

        return NoProgress();
    }

    /// <summary>Stores the item in a cell we claimed for <paramref name="pos"/> and publishes it.</summary>
    private void Publish(ref long word, long cell, long pos, in T item)
    {
        _memory.Ref<T>(cell + RingLayout.CellItemOffset) = item;
        // Release: the element is visible before the sequence that says "published".
        Volatile.Write(ref word, RingLayout.CellWord(pos + 1, 0));
        // Interlocked: also the full fence EventCount.Signal needs between the publish and its read.
        Interlocked.Increment(ref _header.WrittenWord);
        _header.ReadersEvent.Signal();
    }



    private void AdvanceTail(long pos) => Interlocked.CompareExchange(ref _memory.Int64(_tailOffset), pos + 1, pos);

    private void AdvanceHead(long pos) => Interlocked.CompareExchange(ref _memory.Int64(_headOffset), pos + 1, pos);

    private long ReadIndex(long offset) => RingClaims.ReadIndex(_memory, offset, _header, "MPMC");

    /// <summary>
    /// Checks a cell word against the position we read it for. Behind by more than a lap is impossible
    /// (positions before ours were claimed, which moved the cell on). Ahead by more than a lap is possible
    /// when our index is stale (we were descheduled while others went round), so the index is read again:
    /// a cell at sequence s exists only once the index passed s - slots, so against the fresh index it
    /// cannot be more than a lap ahead.
    /// </summary>
    private void CheckDiff(long diff, long pos, long word, long indexOffset, long bias)
    {
        if (diff < -_slots || (diff > _slots && RingLayout.SequenceDiff(word, ReadIndex(indexOffset) + bias) > _slots))
        {
            _header.ThrowDamaged($"MPMC cell word 0x{word:x} cannot belong to position {pos} of a {_slots}-slot ring");
        }
    }

    private RingStatus NoProgress()
    {
        _header.ThrowDamaged($"no MPMC operation made progress in {MaxAttempts} attempts");
        return default;
    }
}
