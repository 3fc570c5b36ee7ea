using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Rings;

/// <summary>
/// The queue under an unbounded channel: a chain of chunks taken from the segment's heap as the queue
/// grows and given back as it drains, run as one Vyukov MPMC queue over global positions (the
/// protocol of <see cref="MpmcRing{T}"/>, with its crash handling) whose cells are spread over the
/// chunks. Layout: <see cref="ChainLayout"/>.
/// </summary>
/// <remarks>
/// <para>
/// Positions. The ring header's Tail and Head count positions as a bounded MPMC ring's do; position p
/// lives in chunk p / C at cell p % C (C the chunk capacity). A chunk is used once: its cell words
/// start at their own positions, and a cell goes p (free) → p + claim (writer) → p + 1 (published) →
/// p + 1 + claim (reader) → p + 2 (done). A writer claims a cell with one CAS naming its process, then
/// moves the tail; a reader stuck on a cell claimed by a dead writer marks it done and steps over it
/// (Skipped); an item claimed by a reader that died is never delivered (Lost, counted when its chunk is
/// freed). <see cref="Count"/> is Tail - Head. There is no bound: a write fails only when the heap
/// cannot give a new chunk (the segment reached its MaxCapacity). A single writer (single reader) has
/// nobody to compete with and publishes (takes) a cell with plain stores, without a claim: dying before
/// the cell's word moves leaves the cell to its successor, dying after it leaves an index the successor
/// steps over.
/// </para>
/// <para>
/// The chain. Linking a new tail chunk (a writer whose position is past the last chunk) and freeing
/// the oldest chunk (a reader that crossed into a newer chunk) happen under the chain's
/// <see cref="RobustLock"/>, each announced first in the intent record, so that whoever takes the lock
/// over from a dead holder finishes or undoes the step (<see cref="ILockRecovery"/>). The tail chunk is
/// never freed, so the chain always has a chunk; the oldest is freed once every position in it was
/// taken by a reader and no live process pins it.
/// </para>
/// <para>
/// Pins (safe reclamation). A process may hold a chunk's address while another frees it. Each instance
/// owns a row of the pin table with a read pin and a write pin: "I may touch chunks from this index on".
/// The freer raises FirstIndex, fences, then reads the pins and puts FirstIndex back if a live pin
/// covers the chunk; a multi-threaded side (not SingleReader / SingleWriter) sets its pin with a fenced
/// exchange at the start of each operation, re-checks FirstIndex (Dekker: one of the two sees the other)
/// and clears it at the end, so an idle process never holds memory back; a single side keeps its pin
/// between operations and moves it forward as it moves to the next chunk (nobody else moves it). Threads
/// of one instance share its pins, so a multi-threaded side runs its operations one at a time in each
/// process (a local lock); processes run in parallel. A dead process's pins are ignored.
/// </para>
/// <para>
/// Damage. Every handle read from shared memory is checked through the heap (an allocated block of this
/// segment with the chunk tag and size) and the chunk's own header (magic, index, shape) before use;
/// every cell word must be one of its three states; every loop is bounded. A failed check is an
/// <see cref="InvalidSegmentException"/>.
/// </para>
/// </remarks>
internal sealed class UnboundedRing<T> : IRing<T>, ILockRecovery, IDisposable
    where T : unmanaged
{
    private const int MaxAttempts = 1 << 20;

    private readonly SegmentAttachment _segment;
    private readonly SegmentMemory _memory;
    private readonly SharedHeap _heap;
    private readonly ProcessTable _processes;
    private readonly OwnerId _me;
    private readonly RingHeader _header;
    private readonly long _root;
    private readonly long _claim;
    private readonly long _tailOffset;
    private readonly long _headOffset;
    private readonly int _chunkCapacity;
    private readonly int _cellSize;
    private readonly int _chunkAllocation;
    private readonly bool _singleReader;
    private readonly bool _singleWriter;
    private readonly Side _reader = new();
    private readonly Side _writer = new();
    private readonly Lock _rowLock = new();
    private ShmHandle _firstChunk; // the chunk Create made, until it is given to the segment
    private int _pinRow = -1;

    /// <summary>What one side (reading or writing) of this instance last used: a chunk it holds pinned.</summary>
    private sealed class Side
    {
        public readonly Lock Gate = new();
        public long Index = -1; // the chunk's index, -1 for none
        public long Start;      // the chunk's line-aligned start in the segment
        public bool Crossed;    // moved into a newer chunk in this operation: older ones may be freed
    }

    private UnboundedRing(SegmentAttachment segment, RingHeader header, bool singleReader, bool singleWriter)
    {
        _segment = segment;
        _memory = segment.Memory;
        _heap = segment.Heap;
        _processes = segment.Processes;
        _me = segment.Owner;
        if (_me.IsNone)
        {
            throw new ArgumentException("An unbounded ring user must hold a process-table slot.", nameof(segment));
        }

        _header = header;
        _root = header.Offset;
        _claim = RingLayout.ClaimFor(_me);
        _tailOffset = _root + RingLayout.TailOffset;
        _headOffset = _root + RingLayout.HeadOffset;
        _chunkCapacity = header.Capacity;
        _cellSize = RingLayout.CellSizeFor(RingKind.Mpmc, ElementSize);
        _chunkAllocation = (int)ChainLayout.ChunkAllocationBytes(_chunkCapacity, _cellSize);
        _singleReader = singleReader;
        _singleWriter = singleWriter;
    }

    /// <summary>The size of <typeparamref name="T"/> in a cell.</summary>
    public static int ElementSize { get; } = RuntimeHelpers.SizeOf(typeof(T).TypeHandle);

    public RingHeader Header => _header;

    /// <summary>No bound: <see cref="int.MaxValue"/>.</summary>
    public int Capacity => int.MaxValue;

    /// <summary>Elements per chunk.</summary>
    public int ChunkCapacity => _chunkCapacity;

    /// <summary>The bytes the ring's own block needs (header and chain descriptor), from a line-aligned start.</summary>
    public static long RequiredBytes() => RingLayout.RequiredBytes(RingKind.Unbounded, ElementSize, 1);

    /// <summary>Bytes of one chunk's heap block for <paramref name="chunkCapacity"/> elements of <typeparamref name="T"/>.</summary>
    public static long ChunkAllocationBytes(int chunkCapacity) =>
        ChainLayout.ChunkAllocationBytes(chunkCapacity, RingLayout.CellSizeFor(RingKind.Mpmc, ElementSize));

    /// <summary>
    /// Lays out an empty unbounded ring in the block and its first chunk (owned by this process until
    /// <see cref="GiveToSegment"/>, so that an initializer that dies leaks nothing).
    /// </summary>
    public static UnboundedRing<T> Create(SegmentAttachment segment, long offset, long length, int chunkCapacity, bool singleReader, bool singleWriter)
    {
        if (chunkCapacity is < 1 or > ChainLayout.MaxChunkCapacity)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(chunkCapacity), chunkCapacity, $"A chunk holds 1 to {ChainLayout.MaxChunkCapacity} items.");
        }

        if (ChunkAllocationBytes(chunkCapacity) > SharedHeap.MaxAllocationSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(chunkCapacity), chunkCapacity, $"A chunk of {chunkCapacity} elements of {ElementSize} bytes exceeds the largest allocation.");
        }

        SegmentMemory memory = segment.Memory;
        RingHeader header = RingHeader.Initialize(memory, offset, length, RingKind.Unbounded, ElementSize, chunkCapacity, segment.Processes);
        var ring = new UnboundedRing<T>(segment, header, singleReader, singleWriter);
        memory.Int32(offset + ChainLayout.ChunkCapacityOffset) = chunkCapacity;
        memory.Int32(offset + ChainLayout.CellSizeOffset) = ring._cellSize;
        memory.Int64(offset + ChainLayout.ChunkBytesOffset) = ring._chunkAllocation;
        if (!segment.Heap.TryAllocate(ring._chunkAllocation, ShmOwnership.Process, ChainLayout.ChunkTag, out ShmHandle first))
        {
            throw new OutOfSharedMemoryException($"Out of shared memory: {ring._chunkAllocation} bytes for the first chunk of an unbounded channel in segment '{segment.Name}'.{segment.DescribeMemoryLimit()}");
        }

        ring.InitChunk(first, 0);
        memory.Int64(offset + ChainLayout.FirstChunkOffset) = (long)first.Value;
        memory.Int64(offset + ChainLayout.FirstIndexOffset) = 0;
        memory.Int64(offset + ChainLayout.TailChunkOffset) = (long)first.Value;
        Volatile.Write(ref memory.Int64(offset + ChainLayout.TailIndexOffset), 0);
        ring._firstChunk = first;
        return ring;
    }

    /// <summary>Attaches to an existing unbounded ring, checking its header and chain descriptor.</summary>
    public static UnboundedRing<T> Attach(SegmentAttachment segment, long offset, long length, bool singleReader, bool singleWriter)
    {
        RingHeader header = RingHeader.Attach(segment.Memory, offset, length, RingKind.Unbounded, ElementSize, segment.Processes);
        var ring = new UnboundedRing<T>(segment, header, singleReader, singleWriter);
        SegmentMemory memory = segment.Memory;
        int capacity = Volatile.Read(ref memory.Int32(offset + ChainLayout.ChunkCapacityOffset));
        int cellSize = Volatile.Read(ref memory.Int32(offset + ChainLayout.CellSizeOffset));
        long chunkBytes = Volatile.Read(ref memory.Int64(offset + ChainLayout.ChunkBytesOffset));
        if (capacity != ring._chunkCapacity || capacity > ChainLayout.MaxChunkCapacity || cellSize != ring._cellSize || chunkBytes != ring._chunkAllocation)
        {
            header.ThrowDamaged($"impossible chain shape (chunk capacity {capacity} of {ring._chunkCapacity}, cell {cellSize}, chunk bytes {chunkBytes})");
        }

        return ring;
    }

    /// <summary>Hands the first chunk to the segment, as the channel is published (see <see cref="Create"/>).</summary>
    public void GiveToSegment()
    {
        if (!_firstChunk.IsNull)
        {
            _heap.SetOwnership(_firstChunk, ShmOwnership.Segment);
            _firstChunk = default;
        }
    }

    // ---------------------------------------------------------------- shared words

    private ref long Word(int offset) => ref _memory.Int64(_root + offset);

    private ref int Word32(int offset) => ref _memory.Int32(_root + offset);

    private long FirstIndex => ReadChainIndex(ChainLayout.FirstIndexOffset);

    private long TailIndex => ReadChainIndex(ChainLayout.TailIndexOffset);

    private long ReadChainIndex(int offset)
    {
        long value = Volatile.Read(ref Word(offset));
        if ((ulong)value >= RingClaims.MaxIndex)
        {
            _header.ThrowDamaged($"chain index {value} is out of range");
        }

        return value;
    }

    private ref long PinWord(int row, bool reading) =>
        ref Word(ChainLayout.PinRowOffset(row) + (reading ? ChainLayout.PinReadOffset : ChainLayout.PinWriteOffset));

    /// <summary>Chunks in the chain now (a snapshot).</summary>
    public long ChunkCount => Math.Max(0, TailIndex - FirstIndex + 1);

    /// <summary>Bytes the chain takes from the heap now (a snapshot).</summary>
    public long ChunkBytes => ChunkCount * _chunkAllocation;

    // ---------------------------------------------------------------- the channel's operations

    /// <summary>Items in the queue now (a snapshot: Tail - Head).</summary>
    public int Count
    {
        get
        {
            long head = ReadIndex(_headOffset);
            long tail = ReadIndex(_tailOffset);
            return (int)Math.Clamp(tail - head, 0, int.MaxValue);
        }
    }

    /// <summary>
    /// Appends an item: <see cref="RingStatus.Success"/>, or <see cref="RingStatus.Full"/> when the heap
    /// has no room for the next chunk (never because of a bound; <paramref name="mode"/> does not apply).
    /// </summary>
    public RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped)
    {
        dropped = default;
        if (_singleWriter)
        {
            return Write(in item);
        }

        lock (_writer.Gate)
        {
            return Write(in item);
        }
    }

    /// <summary>Takes the oldest item: <see cref="RingStatus.Success"/>, <see cref="RingStatus.Empty"/> or <see cref="RingStatus.InFlight"/>.</summary>
    public RingStatus TryRead(out T item)
    {
        if (_singleReader)
        {
            return Read(out item, peek: false);
        }

        lock (_reader.Gate)
        {
            return Read(out item, peek: false);
        }
    }

    /// <summary>Copies the oldest item without taking it; false when nothing is readable now.</summary>
    public bool TryPeek(out T item)
    {
        if (_singleReader)
        {
            return Read(out item, peek: true) == RingStatus.Success;
        }

        lock (_reader.Gate)
        {
            return Read(out item, peek: true) == RingStatus.Success;
        }
    }

    private RingStatus Write(in T item)
    {
        Side side = _writer;
        Protect(side, reading: false, _singleWriter);
        try
        {
            for (int attempt = 0; attempt < MaxAttempts; attempt++)
            {
                long pos = ReadIndex(_tailOffset);
                long chunk = pos / _chunkCapacity;
                if (chunk != side.Index)
                {
                    switch (MoveTo(side, chunk, reading: false, _singleWriter))
                    {
                        case Move.NotLinked:
                            // Past the last chunk: link one (or find that another writer did).
                            if (!TryLink(side.Index))
                            {
                                return RingStatus.Full;
                            }

                            continue;
                        case Move.Gone:
                            continue;
                    }
                }

                long cell = side.Start + ChainLayout.CellOffset(pos - (chunk * _chunkCapacity), _cellSize);
                ref long word = ref _memory.Int64(cell + RingLayout.CellWordOffset);
                long seen = Volatile.Read(ref word);
                long diff = RingLayout.SequenceDiff(seen, pos);
                if (diff == 0)
                {
                    if (_singleWriter && RingLayout.ClaimOf(seen) == 0)
                    {
                        // The only writer: nobody competes for the cell, so no claim and plain stores (a
                        // writer that dies before the publish leaves the cell free and the tail where it was,
                        // and its successor writes there; one that dies after it leaves a published cell the
                        // successor steps over, below).
                        _memory.Ref<T>(cell + RingLayout.CellItemOffset) = item;
                        Volatile.Write(ref word, RingLayout.CellWord(pos + 1, 0)); // release: the element first
                        Volatile.Write(ref _memory.Int64(_tailOffset), pos + 1);
                        Volatile.Write(ref _header.WrittenWord, Volatile.Read(ref _header.WrittenWord) + 1);
                        _header.ReadersEvent.Signal(); // fences before it looks for sleepers
                        return RingStatus.Success;
                    }

                    if (RingLayout.ClaimOf(seen) == 0)
                    {
                        // The claim names us (a reader can tell a dead claimant from a slow one), then the tail.
                        if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos, _claim), seen) == seen)
                        {
                            AdvanceTail(pos);
                            _memory.Ref<T>(cell + RingLayout.CellItemOffset) = item;
                            // Release: the element is visible before the sequence that says "published".
                            Volatile.Write(ref word, RingLayout.CellWord(pos + 1, 0));
                            // Interlocked: also the full fence EventCount.Signal needs.
                            Interlocked.Increment(ref _header.WrittenWord);
                            _header.ReadersEvent.Signal();
                            return RingStatus.Success;
                        }

                        continue;
                    }

                    AdvanceTail(pos); // claimed by a writer that has not moved the tail yet: help it
                    continue;
                }

                if (diff is 1 or 2)
                {
                    AdvanceTail(pos); // pos was taken already: the tail lags
                    continue;
                }

                CellDamaged(seen, pos);
            }

            return NoProgress();
        }
        finally
        {
            Unprotect(side, reading: false, _singleWriter);
        }
    }

    private RingStatus Read(out T item, bool peek)
    {
        Side side = _reader;
        Protect(side, reading: true, _singleReader);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                if (attempt >= MaxAttempts)
                {
                    item = default;
                    return NoProgress();
                }

                long pos = ReadIndex(_headOffset);
                long chunk = pos / _chunkCapacity;
                if (chunk != side.Index)
                {
                    Move move = MoveTo(side, chunk, reading: true, _singleReader);
                    if (move == Move.NotLinked)
                    {
                        break; // its chunk is not linked yet: nothing was written there
                    }

                    if (move == Move.Gone)
                    {
                        continue;
                    }
                }

                long cell = side.Start + ChainLayout.CellOffset(pos - (chunk * _chunkCapacity), _cellSize);
                ref long word = ref _memory.Int64(cell + RingLayout.CellWordOffset);
                long seen = Volatile.Read(ref word);
                long diff = RingLayout.SequenceDiff(seen, pos + 1);
                long claim = RingLayout.ClaimOf(seen);
                if (diff == 0)
                {
                    if (claim != 0)
                    {
                        AdvanceHead(pos); // another reader took pos and has not moved the head yet
                        continue;
                    }

                    if (peek)
                    {
                        item = _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                        // Seqlock-style: the copy counts only if the cell did not change under it.
                        Interlocked.MemoryBarrier();
                        if (Volatile.Read(ref word) == seen)
                        {
                            return RingStatus.Success;
                        }

                        continue;
                    }

                    if (_singleReader)
                    {
                        // The only reader: no claim, plain stores. Dying before the cell is marked done leaves
                        // the item (never handed out) to the successor; after it, the head is stepped over below.
                        item = _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                        Volatile.Write(ref word, RingLayout.CellWord(pos + 2, 0));
                        Volatile.Write(ref _memory.Int64(_headOffset), pos + 1);
                        Volatile.Write(ref _header.ReadWord, Volatile.Read(ref _header.ReadWord) + 1);
                        return RingStatus.Success;
                    }

                    if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 1, _claim), seen) == seen)
                    {
                        AdvanceHead(pos);
                        item = _memory.Ref<T>(cell + RingLayout.CellItemOffset);
                        // Done with the cell before the item reaches anyone: a cell still claimed by a dead
                        // reader holds an item nobody was given (counted as lost when the chunk is freed).
                        Volatile.Write(ref word, RingLayout.CellWord(pos + 2, 0));
                        Interlocked.Increment(ref _header.ReadWord);
                        return RingStatus.Success;
                    }

                    continue;
                }

                if (diff == -1)
                {
                    if (claim == 0)
                    {
                        break; // empty
                    }

                    // A writer claimed pos and has not published. Slow, or dead?
                    switch (RingClaims.Await(ref word, seen, _processes))
                    {
                        case ClaimState.Alive:
                            item = default;
                            return RingStatus.InFlight;
                        case ClaimState.Dead:
                            // Nothing was written: mark the cell done and step over it (tail first, so the
                            // head never passes the tail).
                            if (Interlocked.CompareExchange(ref word, RingLayout.CellWord(pos + 2, 0), seen) == seen)
                            {
                                Interlocked.Increment(ref _header.SkippedWord);
                                AdvanceTail(pos);
                                AdvanceHead(pos);
                            }

                            break;
                    }

                    continue;
                }

                if (diff == 1)
                {
                    AdvanceHead(pos); // pos was consumed already: the head lags
                    continue;
                }

                CellDamaged(seen, pos + 1);
            }

            item = default;
            return RingStatus.Empty;
        }
        finally
        {
            Unprotect(side, reading: true, _singleReader);
            if (side.Crossed)
            {
                side.Crossed = false;
                Reclaim();
            }
        }
    }

    // ---------------------------------------------------------------- chunks and pins

    /// <summary>
    /// Before an operation: a multi-threaded side pins the chunk it holds (fenced) and drops it if it was
    /// freed meanwhile; a single side's pin stands between operations.
    /// </summary>
    private void Protect(Side side, bool reading, bool single)
    {
        if (_pinRow < 0)
        {
            ClaimPinRow();
        }

        if (single || side.Index < 0)
        {
            return;
        }

        // Exchange: the full fence between publishing the pin and reading FirstIndex (the freer does the mirror image).
        Interlocked.Exchange(ref PinWord(_pinRow, reading), side.Index + 1);
        if (side.Index < FirstIndex)
        {
            side.Index = -1; // freed since our last operation: find our place again under the lock
        }
    }

    private void Unprotect(Side side, bool reading, bool single)
    {
        if (!single && _pinRow >= 0)
        {
            Volatile.Write(ref PinWord(_pinRow, reading), 0);
        }
    }

    private enum Move
    {
        /// <summary>The side is on the chunk asked for.</summary>
        Reached,

        /// <summary>The chain does not reach the chunk yet (the side is on the last one).</summary>
        NotLinked,

        /// <summary>The chunk was freed already: the position asked for is stale, read it again.</summary>
        Gone,
    }

    /// <summary>
    /// Moves <paramref name="side"/> to chunk <paramref name="target"/> along the links. Every chunk from
    /// the side's pinned one on is safe to follow.
    /// </summary>
    private Move MoveTo(Side side, long target, bool reading, bool single)
    {
        if (side.Index < 0 || target < side.Index)
        {
            Relocate(side, target, reading);
            if (side.Index > target)
            {
                // Everything up to the target was freed meanwhile: our index was read before others went past it.
                return Move.Gone;
            }
        }

        for (int step = 0; side.Index < target; step++)
        {
            if (step >= MaxAttempts)
            {
                _header.ThrowDamaged($"the chain does not reach chunk {target} in {MaxAttempts} links");
            }

            ulong next = (ulong)Volatile.Read(ref _memory.Int64(side.Start + ChainLayout.ChunkNextOffset));
            if (next == 0)
            {
                return Move.NotLinked;
            }

            long start = ChunkStartOf(next, side.Index + 1);
            side.Index++;
            side.Start = start;
            side.Crossed = true;
            if (single)
            {
                // Forward only, by its only user: the chunks behind it may go.
                Volatile.Write(ref PinWord(_pinRow, reading), side.Index + 1);
            }
        }

        return Move.Reached;
    }

    /// <summary>Places <paramref name="side"/> on the chunk nearest to <paramref name="target"/> that exists, under the chain lock, and pins it.</summary>
    private void Relocate(Side side, long target, bool reading)
    {
        using (HoldLock())
        {
            long first = FirstIndex;
            long tail = TailIndex;
            long index;
            ulong handle;
            if (target >= tail)
            {
                index = tail;
                handle = (ulong)Volatile.Read(ref Word(ChainLayout.TailChunkOffset));
            }
            else
            {
                index = first;
                handle = (ulong)Volatile.Read(ref Word(ChainLayout.FirstChunkOffset));
            }

            long start = ChunkStartOf(handle, index);
            for (int step = 0; index < target && index < tail; step++)
            {
                if (step >= MaxAttempts)
                {
                    _header.ThrowDamaged($"the chain does not reach chunk {target} in {MaxAttempts} links");
                }

                ulong next = (ulong)Volatile.Read(ref _memory.Int64(start + ChainLayout.ChunkNextOffset));
                if (next == 0)
                {
                    break;
                }

                start = ChunkStartOf(next, index + 1);
                index++;
            }

            side.Index = index;
            side.Start = start;
            // Under the lock: no chunk is freed while we pin it.
            Volatile.Write(ref PinWord(_pinRow, reading), index + 1);
        }
    }

    /// <summary>Makes sure chunk <paramref name="after"/> + 1 exists; false when the heap has no room for it.</summary>
    private bool TryLink(long after)
    {
        using (HoldLock())
        {
            long tail = TailIndex;
            if (tail > after)
            {
                return true; // another writer linked it
            }

            if (tail != after)
            {
                _header.ThrowDamaged($"the tail chunk {tail} is behind chunk {after}, which has no successor");
            }

            long tailStart = ChunkStartOf((ulong)Volatile.Read(ref Word(ChainLayout.TailChunkOffset)), tail);
            if (Volatile.Read(ref _memory.Int64(tailStart + ChainLayout.ChunkNextOffset)) != 0)
            {
                _header.ThrowDamaged($"the tail chunk {tail} already has a successor");
            }

            if (!_heap.TryAllocate(_chunkAllocation, ShmOwnership.Process, ChainLayout.ChunkTag, out ShmHandle chunk))
            {
                return false;
            }

            // The intent first: a holder that dies from here on leaves enough for the next one to finish
            // (the chunk is linked) or undo (free it). Until the ownership store below, the chunk is also
            // ours: the heap frees it with us if we die before the intent is written.
            Word(ChainLayout.IntentChunkOffset) = (long)chunk.Value;
            Word(ChainLayout.IntentIndexOffset) = tail + 1;
            Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentLink);
            InitChunk(chunk, tail + 1);
            _heap.SetOwnership(chunk, ShmOwnership.Segment);
            // Release: the chunk's cells and header are visible before the link that leads to it.
            Volatile.Write(ref _memory.Int64(tailStart + ChainLayout.ChunkNextOffset), (long)chunk.Value);
            Volatile.Write(ref Word(ChainLayout.TailChunkOffset), (long)chunk.Value);
            Volatile.Write(ref Word(ChainLayout.TailIndexOffset), tail + 1);
            Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentNone);
            return true;
        }
    }

    /// <summary>Frees the oldest chunks that every reader has passed and nobody pins.</summary>
    private void Reclaim()
    {
        using (HoldLock())
        {
            for (int i = 0; i < MaxAttempts; i++)
            {
                long first = FirstIndex;
                if (first >= TailIndex || ReadIndex(_headOffset) < (first + 1) * _chunkCapacity)
                {
                    return; // the tail chunk stays; a chunk with positions not taken yet stays
                }

                ulong handle = (ulong)Volatile.Read(ref Word(ChainLayout.FirstChunkOffset));
                long start = ChunkStartOf(handle, first);
                long next = Volatile.Read(ref _memory.Int64(start + ChainLayout.ChunkNextOffset));
                if (next == 0)
                {
                    _header.ThrowDamaged($"chunk {first} is before the tail but has no successor");
                }

                Word(ChainLayout.IntentChunkOffset) = (long)handle;
                Word(ChainLayout.IntentIndexOffset) = first;
                Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentFree);
                Volatile.Write(ref Word(ChainLayout.FirstChunkOffset), next);
                Volatile.Write(ref Word(ChainLayout.FirstIndexOffset), first + 1);
                // The fence between unlinking and reading the pins (a pinning side fences the other way).
                Interlocked.MemoryBarrier();
                if (IsPinned(first))
                {
                    Volatile.Write(ref Word(ChainLayout.FirstChunkOffset), (long)handle);
                    Volatile.Write(ref Word(ChainLayout.FirstIndexOffset), first);
                    Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentNone);
                    return;
                }

                FreeChunk(handle, start);
                Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentNone);
            }
        }
    }

    private void FreeChunk(ulong handle, long start)
    {
        // Cells still claimed by a reader: a reader that died holding the item (live ones pin the chunk).
        long lost = 0;
        for (int i = 0; i < _chunkCapacity; i++)
        {
            if (RingLayout.ClaimOf(Volatile.Read(ref _memory.Int64(start + ChainLayout.CellOffset(i, _cellSize)))) != 0)
            {
                lost++;
            }
        }

        if (lost != 0)
        {
            Interlocked.Add(ref _header.LostWord, lost);
        }

        FreeQuietly(_heap, handle);
        Interlocked.Increment(ref Word(ChainLayout.FreedOffset));
    }

    /// <summary>Whether a live process pins chunk <paramref name="index"/> (or an older one).</summary>
    private bool IsPinned(long index)
    {
        for (int row = 0; row < ChainLayout.PinRows; row++)
        {
            uint owner = (uint)Volatile.Read(ref Word32(ChainLayout.PinRowOffset(row) + ChainLayout.PinOwnerOffset));
            if (owner == 0)
            {
                continue;
            }

            long read = Volatile.Read(ref PinWord(row, reading: true));
            long write = Volatile.Read(ref PinWord(row, reading: false));
            bool covers = (read != 0 && read - 1 <= index) || (write != 0 && write - 1 <= index);
            if (covers && _processes.IsAlive(new OwnerId(owner)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Takes a row of the pin table for this instance (a free row, or a dead process's).</summary>
    private void ClaimPinRow()
    {
        lock (_rowLock)
        {
            if (_pinRow >= 0)
            {
                return;
            }

            uint me = _me.Value;
            for (int pass = 0; pass < 2; pass++)
            {
                for (int row = 0; row < ChainLayout.PinRows; row++)
                {
                    ref int word = ref Word32(ChainLayout.PinRowOffset(row) + ChainLayout.PinOwnerOffset);
                    int owner = Volatile.Read(ref word);
                    bool free = owner == 0 || (pass == 1 && !_processes.IsAlive(new OwnerId((uint)owner)));
                    if (free && Interlocked.CompareExchange(ref word, (int)me, owner) == owner)
                    {
                        Volatile.Write(ref PinWord(row, reading: true), 0);
                        Volatile.Write(ref PinWord(row, reading: false), 0);
                        _pinRow = row;
                        return;
                    }
                }
            }

            throw new InvalidOperationException($"An unbounded channel in segment '{_segment.Name}' is in use by {ChainLayout.PinRows} channel instances already, the most it records.");
        }
    }

    /// <summary>Gives up this instance's pins (the channel is being detached): the chunks it held may go.</summary>
    public void Dispose()
    {
        // The gates: a multi-threaded side's operation in flight finishes before its pin goes.
        lock (_reader.Gate)
        {
            lock (_writer.Gate)
            {
                int row = _pinRow;
                if (row < 0)
                {
                    return;
                }

                Volatile.Write(ref PinWord(row, reading: true), 0);
                Volatile.Write(ref PinWord(row, reading: false), 0);
                Interlocked.CompareExchange(ref Word32(ChainLayout.PinRowOffset(row) + ChainLayout.PinOwnerOffset), 0, (int)_me.Value);
                _pinRow = -1;
                _reader.Index = -1;
                _writer.Index = -1;
            }
        }
    }

    /// <summary>Lays out a fresh chunk for positions [index · C, (index + 1) · C): each cell free for its own position.</summary>
    private long InitChunk(ShmHandle chunk, long index)
    {
        long payload = _heap.GetPayloadOffset(chunk, out int length, out _);
        long start = ChainLayout.ChunkStart(payload);
        if (start + ChainLayout.ChunkRequiredBytes(_chunkCapacity, _cellSize) > payload + length)
        {
            _header.ThrowDamaged($"a chunk block of {length} bytes is too small");
        }

        long basePosition = index * _chunkCapacity;
        for (int i = 0; i < _chunkCapacity; i++)
        {
            _memory.Int64(start + ChainLayout.CellOffset(i, _cellSize) + RingLayout.CellWordOffset) = RingLayout.CellWord(basePosition + i, 0);
        }

        _memory.Int64(start + ChainLayout.ChunkIndexOffset) = index;
        _memory.Int64(start + ChainLayout.ChunkNextOffset) = 0;
        _memory.Int32(start + ChainLayout.ChunkCapacityInChunkOffset) = _chunkCapacity;
        _memory.Int32(start + ChainLayout.ChunkCellSizeOffset) = _cellSize;
        Volatile.Write(ref _memory.Int64(start + ChainLayout.ChunkMagicOffset), ChainLayout.ChunkMagic);
        return start;
    }

    /// <summary>Checks a chunk handle read from shared memory and returns the chunk's start.</summary>
    private long ChunkStartOf(ulong handle, long expectedIndex) =>
        ChunkStartOf(_memory, _heap, handle, expectedIndex, _chunkCapacity, _cellSize, _chunkAllocation);

    private static long ChunkStartOf(SegmentMemory memory, SharedHeap heap, ulong handle, long expectedIndex, int capacity, int cellSize, int allocation)
    {
        long payload;
        int length;
        uint tag;
        try
        {
            payload = heap.GetPayloadOffset(ShmHandle.FromValue(handle), out length, out tag);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return ThrowHelper.ThrowDamaged<long>(memory.Name, $"the link to chunk {expectedIndex} of an unbounded channel is not a live block ({e.Message}).");
        }

        long start = ChainLayout.ChunkStart(payload);
        if (tag != ChainLayout.ChunkTag || length != allocation ||
            Volatile.Read(ref memory.Int64(start + ChainLayout.ChunkMagicOffset)) != ChainLayout.ChunkMagic ||
            Volatile.Read(ref memory.Int64(start + ChainLayout.ChunkIndexOffset)) != expectedIndex ||
            Volatile.Read(ref memory.Int32(start + ChainLayout.ChunkCapacityInChunkOffset)) != capacity ||
            Volatile.Read(ref memory.Int32(start + ChainLayout.ChunkCellSizeOffset)) != cellSize)
        {
            return ThrowHelper.ThrowDamaged<long>(memory.Name, $"chunk {expectedIndex} of an unbounded channel is damaged (tag {tag:x8}, {length} bytes).");
        }

        return start;
    }

    private static void FreeQuietly(SharedHeap heap, ulong handle)
    {
        try
        {
            heap.Free(ShmHandle.FromValue(handle));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Freed already (or reclaimed with a dead owner).
        }
    }

    // ---------------------------------------------------------------- the lock and its recovery

    private Scope HoldLock() => RobustLock.Enter(ref Word32(ChainLayout.LockOffset), _me, _processes, this);

    /// <summary>
    /// The chain lock's holder died: finish or undo what its intent record says. A link whose chunk is
    /// already behind the tail's link is finished (the descriptor is brought up to it); otherwise the
    /// chunk is freed. A free whose chunk is unlinked is finished, unless a live process pins it
    /// (then it is put back).
    /// </summary>
    void ILockRecovery.RecoverLocked()
    {
        int op = Volatile.Read(ref Word32(ChainLayout.IntentOpOffset));
        ulong handle = (ulong)Volatile.Read(ref Word(ChainLayout.IntentChunkOffset));
        long index = Volatile.Read(ref Word(ChainLayout.IntentIndexOffset));
        switch (op)
        {
            case ChainLayout.IntentNone:
                break;
            case ChainLayout.IntentLink:
                long tail = TailIndex;
                if ((ulong)Volatile.Read(ref Word(ChainLayout.TailChunkOffset)) == handle && handle != 0 && tail == index - 1)
                {
                    Volatile.Write(ref Word(ChainLayout.TailIndexOffset), index); // died between the two stores
                }
                else if (tail == index - 1)
                {
                    long tailStart = ChunkStartOf((ulong)Volatile.Read(ref Word(ChainLayout.TailChunkOffset)), tail);
                    ulong next = (ulong)Volatile.Read(ref _memory.Int64(tailStart + ChainLayout.ChunkNextOffset));
                    if (next == handle && handle != 0)
                    {
                        Volatile.Write(ref Word(ChainLayout.TailChunkOffset), (long)handle);
                        Volatile.Write(ref Word(ChainLayout.TailIndexOffset), index);
                    }
                    else if (next == 0)
                    {
                        FreeQuietly(_heap, handle);
                    }
                    else
                    {
                        _header.ThrowDamaged("the tail chunk links to a chunk the intent record does not name");
                    }
                }

                break;
            case ChainLayout.IntentFree:
                if (FirstIndex == index + 1)
                {
                    if (IsPinned(index))
                    {
                        Volatile.Write(ref Word(ChainLayout.FirstChunkOffset), (long)handle);
                        Volatile.Write(ref Word(ChainLayout.FirstIndexOffset), index);
                    }
                    else
                    {
                        FreeQuietly(_heap, handle);
                    }
                }

                break;
            default:
                _header.ThrowDamaged($"chain intent {op} is not an intent");
                break;
        }

        Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentNone);
    }

    // ---------------------------------------------------------------- test hooks

    /// <summary>The ring's start in the segment (for tests that damage the chain descriptor).</summary>
    internal long RootOffset => _root;

    /// <summary>The start of the chunk this instance's reader side holds, or -1 (for tests that damage a chunk).</summary>
    internal long ReaderChunkStartForTest => _reader.Index < 0 ? -1 : _reader.Start;

    /// <summary>
    /// For tests: takes the chain lock and starts linking a chunk after the tail as a writer would, then
    /// calls <paramref name="park"/> (which never returns: the process is killed there) either before the
    /// link is made (<paramref name="linked"/> false) or after the link but before the descriptor says so.
    /// </summary>
    internal void LinkAndStopForTest(bool linked, Action park)
    {
        if (_pinRow < 0)
        {
            ClaimPinRow();
        }

        using (HoldLock())
        {
            long tail = TailIndex;
            long tailStart = ChunkStartOf((ulong)Volatile.Read(ref Word(ChainLayout.TailChunkOffset)), tail);
            if (!_heap.TryAllocate(_chunkAllocation, ShmOwnership.Process, ChainLayout.ChunkTag, out ShmHandle chunk))
            {
                throw new OutOfSharedMemoryException("no room for the test's chunk");
            }

            Word(ChainLayout.IntentChunkOffset) = (long)chunk.Value;
            Word(ChainLayout.IntentIndexOffset) = tail + 1;
            Volatile.Write(ref Word32(ChainLayout.IntentOpOffset), ChainLayout.IntentLink);
            InitChunk(chunk, tail + 1);
            _heap.SetOwnership(chunk, ShmOwnership.Segment);
            if (linked)
            {
                Volatile.Write(ref _memory.Int64(tailStart + ChainLayout.ChunkNextOffset), (long)chunk.Value);
            }

            park();
        }
    }

    // ---------------------------------------------------------------- destroy

    /// <summary>
    /// Frees every chunk of the unbounded ring at <paramref name="offset"/> (the channel is being
    /// destroyed, nobody is attached). Stops at the first damaged link: what is behind it stays.
    /// </summary>
    /// <remarks>Independent of <typeparamref name="T"/>: the element size is read from the header.</remarks>
    /// <summary>
    /// Calls <paramref name="visit"/> with the element offset of every cell of the chain that holds an
    /// item (published and not taken, or claimed by a reader that never returned it): for a destroyer
    /// that frees what queued items own, without knowing their type. A damaged chain ends the walk.
    /// </summary>
    public static void VisitQueued(SegmentAttachment segment, long offset, long length, Action<long> visit)
    {
        SegmentMemory memory = segment.Memory;
        SharedHeap heap = segment.Heap;
        try
        {
            RingHeader.Attach(memory, offset, length, RingKind.Unbounded, Volatile.Read(ref memory.Int32(offset + RingLayout.ElementSizeOffset)), segment.Processes);
            int capacity = Volatile.Read(ref memory.Int32(offset + ChainLayout.ChunkCapacityOffset));
            int cellSize = Volatile.Read(ref memory.Int32(offset + ChainLayout.CellSizeOffset));
            long allocation = Volatile.Read(ref memory.Int64(offset + ChainLayout.ChunkBytesOffset));
            if (capacity is < 1 or > ChainLayout.MaxChunkCapacity || allocation != ChainLayout.ChunkAllocationBytes(capacity, cellSize))
            {
                return;
            }

            ulong handle = (ulong)Volatile.Read(ref memory.Int64(offset + ChainLayout.FirstChunkOffset));
            long index = Volatile.Read(ref memory.Int64(offset + ChainLayout.FirstIndexOffset));
            long tail = Volatile.Read(ref memory.Int64(offset + ChainLayout.TailIndexOffset));
            for (long step = 0; handle != 0 && step <= tail - index + 1 && step < RingClaims.MaxIndex; step++)
            {
                long start = ChunkStartOf(memory, heap, handle, index + step, capacity, cellSize, (int)allocation);
                long basePosition = (index + step) * capacity;
                for (int i = 0; i < capacity; i++)
                {
                    long cell = start + ChainLayout.CellOffset(i, cellSize);
                    long word = Volatile.Read(ref memory.Int64(cell + RingLayout.CellWordOffset));
                    if ((word & RingLayout.SequenceMask) == ((basePosition + i + 1) & RingLayout.SequenceMask))
                    {
                        visit(cell + RingLayout.CellItemOffset);
                    }
                }

                handle = (ulong)Volatile.Read(ref memory.Int64(start + ChainLayout.ChunkNextOffset));
            }
        }
        catch (InvalidSegmentException)
        {
            // A damaged chain: what is behind the damage stays allocated.
        }
    }

    public static void FreeChain(SegmentAttachment segment, long offset, long length)
    {
        SegmentMemory memory = segment.Memory;
        SharedHeap heap = segment.Heap;
        try
        {
            // Any element type: whoever destroys the channel may not know it.
            RingHeader.Attach(memory, offset, length, RingKind.Unbounded, Volatile.Read(ref memory.Int32(offset + RingLayout.ElementSizeOffset)), segment.Processes);
            int capacity = Volatile.Read(ref memory.Int32(offset + ChainLayout.ChunkCapacityOffset));
            int cellSize = Volatile.Read(ref memory.Int32(offset + ChainLayout.CellSizeOffset));
            long allocation = Volatile.Read(ref memory.Int64(offset + ChainLayout.ChunkBytesOffset));
            if (capacity is < 1 or > ChainLayout.MaxChunkCapacity || allocation != ChainLayout.ChunkAllocationBytes(capacity, cellSize))
            {
                return;
            }

            if (Volatile.Read(ref memory.Int32(offset + ChainLayout.IntentOpOffset)) == ChainLayout.IntentLink)
            {
                // A linker died and nobody took the lock since: its chunk may be unlinked.
                long pendingIndex = Volatile.Read(ref memory.Int64(offset + ChainLayout.IntentIndexOffset));
                if (pendingIndex > Volatile.Read(ref memory.Int64(offset + ChainLayout.TailIndexOffset)))
                {
                    FreeQuietly(heap, (ulong)Volatile.Read(ref memory.Int64(offset + ChainLayout.IntentChunkOffset)));
                }
            }

            ulong handle = (ulong)Volatile.Read(ref memory.Int64(offset + ChainLayout.FirstChunkOffset));
            long index = Volatile.Read(ref memory.Int64(offset + ChainLayout.FirstIndexOffset));
            long tail = Volatile.Read(ref memory.Int64(offset + ChainLayout.TailIndexOffset));
            for (long step = 0; handle != 0 && step <= tail - index + 1 && step < RingClaims.MaxIndex; step++)
            {
                long start = ChunkStartOf(memory, heap, handle, index + step, capacity, cellSize, (int)allocation);
                ulong next = (ulong)Volatile.Read(ref memory.Int64(start + ChainLayout.ChunkNextOffset));
                FreeQuietly(heap, handle);
                handle = next;
            }
        }
        catch (InvalidSegmentException)
        {
            // A damaged chain: what is behind the damage stays allocated.
        }
    }

    // ---------------------------------------------------------------- helpers (as MpmcRing's)



    private void AdvanceTail(long pos) => Interlocked.CompareExchange(ref _memory.Int64(_tailOffset), pos + 1, pos);

    private void AdvanceHead(long pos) => Interlocked.CompareExchange(ref _memory.Int64(_headOffset), pos + 1, pos);

    private long ReadIndex(long offset) => RingClaims.ReadIndex(_memory, offset, _header, "unbounded ring");

    private void CellDamaged(long word, long expected) =>
        _header.ThrowDamaged($"cell word 0x{word:x} cannot belong to position {expected} of a one-shot chunk");

    private RingStatus NoProgress()
    {
        _header.ThrowDamaged($"no unbounded ring operation made progress in {MaxAttempts} attempts");
        return default;
    }
}
