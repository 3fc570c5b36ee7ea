using System.Diagnostics.CodeAnalysis;
using SharedMemChannels.Channels;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Records;

/// <summary>
/// One process's view of a record channel's records: allocating them (for its writer), the ownership
/// handovers a write and a read make (the hooks <see cref="ChannelCore{T}"/> calls), and every check a
/// <see cref="ShmRecord"/> makes before it touches its block. <see cref="ShmRecord"/> refers to this.
/// </summary>
/// <remarks>
/// <para>
/// Who owns a record, in shared memory: the heap block's owner (the writer process from allocation to
/// the write, the segment while queued, the reader process from the read on: the dead-process reclaim
/// frees a dead holder's records) and the record header's ownership word (<see cref="RecordHeader"/>),
/// which a holder's <see cref="ShmRecord"/> must match exactly to use, write or dispose it.
/// </para>
/// <para>
/// Crash windows, and what they can leak at most until the channel is destroyed (the destruction frees
/// every segment-owned record of the channel, found by a heap walk): a writer killed after giving a record
/// to the segment and before publishing it in the ring, one record; a reader killed after taking a record
/// from the ring and before owning it, one record (an MPMC reader killed while it holds a ring cell is
/// the same case, counted as Lost by the ring). Nothing is ever freed twice: every free is a
/// compare-and-swap of the ownership word to Freed first.
/// </para>
/// </remarks>
internal sealed class RecordOwnership : ElementOwnership<RecordSlot>
{
    private const ulong TicketMask = (1UL << (64 - RecordHeader.TicketShift)) - 1;

    private static long s_nextTicket = Random.Shared.NextInt64(1, 1L << 40);

    private readonly int _kind;
    private ChannelCore<RecordSlot> _core = null!;
    private SegmentAttachment _segment = null!;
    private SegmentMemory _memory = null!;
    private SharedHeap _heap = null!;
    private ulong _channelId;
    private int _maxRecordSize;

    public RecordOwnership(int kind) => _kind = kind;

    /// <summary>The ownership of a serialized channel's records: they carry items of a serializer stored with the channel.</summary>
    public RecordOwnership(Serialization.SerializedElementIdentity serialized)
    {
        _kind = ChannelControl.ElementKindSerialized;
        Serialized = serialized;
    }

    public override int Kind => _kind;

    public override Serialization.SerializedElementIdentity? Serialized { get; }

    public override int[] OwnedOffsets { get; } = [RecordSlot.HandleOffset];

    public ChannelCore<RecordSlot> Core => _core;

    public ulong ChannelId => _channelId;

    public SegmentMemory Memory => _memory;

    public int MaxRecordSize => _maxRecordSize;

    public override void Bind(ChannelCore<RecordSlot> core)
    {
        _core = core;
        _segment = core.Segment;
        _memory = _segment.Memory;
        _heap = _segment.Heap;
        _channelId = core.ChannelId;
        _maxRecordSize = core.Options.MaxRecordSize;
    }

    // ---------------------------------------------------------------- the writer's records

    /// <summary>Allocates a record of <paramref name="size"/> bytes owned by this process (per-thread heap cache first).</summary>
    public bool TryAllocate(int size, out ShmRecord record)
    {
        if (size < 1 || size > _maxRecordSize)
        {
            ThrowSize(size);
        }

        _core.ThrowIfDetached();
        if (!_heap.TryAllocate(size + RecordHeader.Size, ShmOwnership.Process, RecordHeader.BlockTag, out ShmHandle handle))
        {
            record = default;
            return false;
        }

        long payload = _heap.GetPayloadOffset(handle, out _, out _);
        ref RecordHeader header = ref _memory.Ref<RecordHeader>(payload);
        ulong word = RecordHeader.Word((ulong)Interlocked.Increment(ref s_nextTicket) & TicketMask, RecordHeader.StateWriter);
        header.Magic = RecordHeader.MagicValue;
        header.Length = size;
        header.ChannelId = _channelId;
        header.Reserved = 0;
        Volatile.Write(ref header.Ownership, word);
        record = new ShmRecord(this, handle, word, size);
        return true;
    }

    [DoesNotReturn]
    private void ThrowSize(int size) =>
        throw new ArgumentOutOfRangeException(nameof(size), size, $"A record of channel '{_core.Name}' holds 1 to {_maxRecordSize} bytes (SharedChannelOptions.MaxRecordSize).");

    /// <summary>The ring element for writing <paramref name="record"/>; a record of another channel or a default one is an <see cref="ArgumentException"/>.</summary>
    public RecordSlot SlotFor(in ShmRecord record)
    {
        RecordOwnership? owner = record.Owner;
        if (owner is null)
        {
            ThrowHelper.ThrowArgument("A default ShmRecord holds no record: allocate one with the writer's Allocate.", nameof(record));
        }

        if (owner != this && (owner._channelId != _channelId || owner._memory != _memory))
        {
            ThrowHelper.ThrowArgument(
                $"The record belongs to another channel{(owner._memory != _memory ? " of another segment" : string.Empty)}: a record is written to the channel whose writer allocated it.",
                nameof(record));
        }

        if (RecordHeader.StateOf(record.Word) != RecordHeader.StateWriter)
        {
            ThrowHelper.ThrowInvalidOperation("Only a record allocated by a writer can be written; a record read from a channel is disposed, or copied into a new record.");
        }

        return new RecordSlot { Handle = record.Handle, Ticket = RecordHeader.TicketOf(record.Word), Length = record.Length };
    }

    // ---------------------------------------------------------------- a holder's checks

    /// <summary>
    /// The payload offset of the header of the block <paramref name="record"/> names, if the record is
    /// still held as it says (same block generation, same ownership word); otherwise an
    /// <see cref="ObjectDisposedException"/>: it was written, disposed, or its copy was.
    /// </summary>
    private long Resolve(in ShmRecord record)
    {
        if (_segment.IsDetached)
        {
            ThrowHelper.ThrowObjectDisposed(nameof(SharedSegment)); // its mapping is gone: nothing may be read
        }

        long payload;
        int length;
        uint tag;
        try
        {
            payload = _heap.GetPayloadOffset(record.Handle, out length, out tag);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw NoLongerHeld(record);
        }

        if (tag != RecordHeader.BlockTag || length < RecordHeader.Size + record.Length ||
            Volatile.Read(ref _memory.Ref<RecordHeader>(payload).Ownership) != record.Word)
        {
            throw NoLongerHeld(record);
        }

        return payload;
    }

    private static ObjectDisposedException NoLongerHeld(in ShmRecord record) =>
        new(nameof(ShmRecord), RecordHeader.StateOf(record.Word) == RecordHeader.StateWriter
            ? $"The record {record.Handle} is no longer this writer's: it was written to the channel (ownership passed to the channel and its reader) or disposed."
            : $"The record {record.Handle} is no longer this reader's: it was disposed.");

    /// <summary>The payload of a record its holder still owns.</summary>
    public Span<byte> GetSpan(ShmRecord record)
    {
        using SegmentAttachment.Use use = _segment.EnterUse(); // a holder's record may outlive the segment: ObjectDisposedException then
        long payload = Resolve(in record);
        return _memory.Span(payload + RecordHeader.Size, record.Length);
    }

    /// <summary>Where the payload of a record its holder still owns starts (for layers that fill it without a span per call).</summary>
    public long PayloadOffset(in ShmRecord record) => Resolve(in record) + RecordHeader.Size;

    /// <summary>
    /// The payload of a record a drop mode just took out of the ring and has not discarded yet (the
    /// <c>itemDropped</c> callback of a serialized channel reads it); checked as a holder's record in the
    /// queued state with the slot's ticket.
    /// </summary>
    public ReadOnlySpan<byte> QueuedSpan(in RecordSlot slot)
    {
        var record = new ShmRecord(this, slot.Handle, RecordHeader.Word(slot.Ticket, RecordHeader.StateQueued), slot.Length);
        return GetSpan(record);
    }

    /// <summary>
    /// The writer's record with a shorter <paramref name="length"/> (the block stays as allocated): for
    /// layers that allocate the largest record they may need and fill less (serialized elements).
    /// </summary>
    public ShmRecord Shrink(ShmRecord record, int length)
    {
        long payload = Resolve(in record);
        if (RecordHeader.StateOf(record.Word) != RecordHeader.StateWriter)
        {
            ThrowHelper.ThrowInvalidOperation("Only a writer's record can be shrunk.");
        }

        if (length < 1 || length > record.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"A record of {record.Length} bytes shrinks to 1 to {record.Length} bytes.");
        }

        _memory.Ref<RecordHeader>(payload).Length = length;
        return new ShmRecord(this, record.Handle, record.Word, length);
    }

    /// <summary>Frees a record its holder still owns (a reader done with it, a writer abandoning it).</summary>
    public void Dispose(in ShmRecord record)
    {
        using SegmentAttachment.Use use = _segment.EnterUse(); // a holder's record may outlive the segment: ObjectDisposedException then
        long payload = Resolve(in record);
        ulong freed = RecordHeader.Word(RecordHeader.TicketOf(record.Word), RecordHeader.StateFreed);
        if (Interlocked.CompareExchange(ref _memory.Ref<RecordHeader>(payload).Ownership, freed, record.Word) != record.Word)
        {
            throw NoLongerHeld(record); // another copy of it got there first
        }

        _heap.Free(record.Handle);
    }

    // ---------------------------------------------------------------- the channel's hooks

    /// <summary>Writer → channel: the word moves from writer to queued, then the block becomes the segment's.</summary>
    public override void HandOver(in RecordSlot item)
    {
        var record = new ShmRecord(this, item.Handle, RecordHeader.Word(item.Ticket, RecordHeader.StateWriter), item.Length);
        long payload = Resolve(in record);
        ulong queued = RecordHeader.Word(item.Ticket, RecordHeader.StateQueued);
        if (Interlocked.CompareExchange(ref _memory.Ref<RecordHeader>(payload).Ownership, queued, record.Word) != record.Word)
        {
            throw NoLongerHeld(record);
        }

        // Killed before this store: the block is still ours and reclaimed with us (it was never queued).
        _heap.SetOwnership(item.Handle, ShmOwnership.Segment);
    }

    /// <summary>The ring refused the record: the block comes back to this process first, then the word.</summary>
    public override void TakeBack(in RecordSlot item)
    {
        _heap.SetOwnership(item.Handle, ShmOwnership.Process);
        long payload = _heap.GetPayloadOffset(item.Handle, out _, out _);
        Interlocked.CompareExchange(
            ref _memory.Ref<RecordHeader>(payload).Ownership,
            RecordHeader.Word(item.Ticket, RecordHeader.StateWriter),
            RecordHeader.Word(item.Ticket, RecordHeader.StateQueued));
    }

    /// <summary>
    /// Channel → reader: the slot just taken from the ring is checked in full (an allocated record block
    /// of this channel, queued with this ticket, of this length), the block becomes this process's, and
    /// the word moves to reader with the next ticket, which the slot now carries.
    /// </summary>
    public override void Receive(ref RecordSlot item)
    {
        long payload = CheckQueued(in item, "read");
        ulong queued = RecordHeader.Word(item.Ticket, RecordHeader.StateQueued);
        ulong ticket = (item.Ticket + 1) & TicketMask;

        // Killed between these two stores: the block is ours and reclaimed with us.
        _heap.SetOwnership(item.Handle, ShmOwnership.Process);
        if (Interlocked.CompareExchange(ref _memory.Ref<RecordHeader>(payload).Ownership, RecordHeader.Word(ticket, RecordHeader.StateReader), queued) != queued)
        {
            _heap.SetOwnership(item.Handle, ShmOwnership.Segment);
            ThrowHelper.ThrowDamaged(_segment.Name, $"a record read from channel '{_core.Name}' is not in the queued state its slot says ({item.Handle}).");
        }

        item.Ticket = ticket;
    }

    /// <summary>A drop mode discarded a queued record: queued → freed, then the block is freed.</summary>
    public override void Discard(in RecordSlot item)
    {
        long payload = CheckQueued(in item, "dropped");
        ulong queued = RecordHeader.Word(item.Ticket, RecordHeader.StateQueued);
        if (Interlocked.CompareExchange(ref _memory.Ref<RecordHeader>(payload).Ownership, RecordHeader.Word(item.Ticket, RecordHeader.StateFreed), queued) != queued)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"a record dropped by channel '{_core.Name}' is not in the queued state its slot says ({item.Handle}).");
        }

        _heap.Free(item.Handle);
    }

    /// <summary>Checks a slot from the ring and its record's header; anything off is an <see cref="InvalidSegmentException"/>.</summary>
    private long CheckQueued(in RecordSlot item, string what)
    {
        long payload = 0;
        int blockLength = 0;
        uint tag = 0;
        try
        {
            payload = _heap.GetPayloadOffset(item.Handle, out blockLength, out tag);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"a record slot {what} from channel '{_core.Name}' names no allocated block ({e.Message}).");
        }

        if (tag != RecordHeader.BlockTag || blockLength < RecordHeader.Size)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"a record slot {what} from channel '{_core.Name}' names a block that is not a record ({item.Handle}).");
        }

        ref RecordHeader header = ref _memory.Ref<RecordHeader>(payload);
        if (header.Magic != RecordHeader.MagicValue || header.ChannelId != _channelId || header.Length != item.Length ||
            item.Length < 1 || item.Length > _maxRecordSize || item.Length > blockLength - RecordHeader.Size)
        {
            ThrowHelper.ThrowDamaged(
                _segment.Name,
                $"a record {what} from channel '{_core.Name}' is damaged: slot length {item.Length}, header length {header.Length}, {blockLength - RecordHeader.Size} bytes of block, channel id {header.ChannelId:x16}.");
        }

        return payload;
    }

    /// <summary>The reader's record for a slot <see cref="Receive"/> accepted.</summary>
    public ShmRecord ReaderRecord(in RecordSlot slot) =>
        new(this, slot.Handle, RecordHeader.Word(slot.Ticket, RecordHeader.StateReader), slot.Length);
}
