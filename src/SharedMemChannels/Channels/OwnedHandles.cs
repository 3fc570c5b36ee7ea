using System.Buffers.Binary;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Records;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// The type-agnostic half of owned storage: when a channel is destroyed (by whichever process detaches
/// last from a removed channel, which need not know its element type), the storage of the items still
/// queued is freed from the owned-handle table in the control block, and the records of the channel that
/// a crash left owned by the segment are found by a heap walk and freed.
/// </summary>
/// <remarks>
/// Everything read here is untrusted and the destruction must finish: a handle that is not an allocated
/// block, a record of another channel or in another state, is skipped, never freed and never a throw.
/// Only blocks the segment owns are freed: storage a live process holds (a record it allocated or read)
/// stays its own.
/// </remarks>
internal static class OwnedHandles
{
    /// <summary>Frees what the queued items of the channel at <paramref name="control"/> own, then its leftover records.</summary>
    public static void ReleaseAll(SegmentAttachment segment, long control)
    {
        ref ChannelControl c = ref segment.Memory.Ref<ChannelControl>(control);
        if (Volatile.Read(ref c.Magic) != ChannelControl.MagicValue || c.Version != ChannelControl.CurrentVersion)
        {
            return;
        }

        ulong channelId = c.ChannelId;
        int count = c.OwnedHandleCount;
        if (count is > 0 and <= ChannelControl.MaxOwnedHandles)
        {
            Span<int> offsets = stackalloc int[count];
            for (int i = 0; i < count; i++)
            {
                offsets[i] = segment.Memory.Int32(ChannelLayout.OwnedHandleOffset(control, i));
            }

            try
            {
                ReleaseQueued(segment, ref c, offsets, channelId);
            }
            catch (InvalidSegmentException)
            {
                // A damaged ring: what it held stays (its blocks are the segment's); the channel still goes.
            }
        }

        if (c.ElementKind != ChannelControl.ElementKindPlain)
        {
            ReleaseLeftoverRecords(segment, channelId);
        }
    }

    /// <summary>Frees the owned handles of every item in the ring (and of items a dead reader claimed and never returned).</summary>
    private static void ReleaseQueued(SegmentAttachment segment, ref ChannelControl c, ReadOnlySpan<int> offsets, ulong channelId)
    {
        int elementSize = c.ElementSize;
        var kind = (RingKind)c.RingKind;
        if (kind == RingKind.Unbounded)
        {
            int[] owned = offsets.ToArray();
            UnboundedRing<byte>.VisitQueued(segment, c.RingOffset, c.RingLength, element => ReleaseElement(segment, element, elementSize, owned, channelId));
            return;
        }

        if (kind == RingKind.Prioritized)
        {
            int[] owned = offsets.ToArray();
            PriorityRing<byte>.VisitQueued(segment, c.RingOffset, c.RingLength, element => ReleaseElement(segment, element, elementSize, owned, channelId));
            return;
        }

        if (kind is not (RingKind.Spsc or RingKind.Mpmc))
        {
            return; // a ring kind this walk does not know: its items' storage stays with the segment
        }

        RingHeader ring = RingHeader.Attach(segment.Memory, c.RingOffset, c.RingLength, kind, elementSize, segment.Processes);
        int slots = ring.SlotCount;
        long mask = slots - 1;
        if (kind == RingKind.Spsc)
        {
            long head = Volatile.Read(ref ring.Head);
            long tail = Volatile.Read(ref ring.Tail);
            long queued = Math.Clamp(tail - head, 0, ring.Capacity);
            for (long p = head; p < head + queued; p++)
            {
                ReleaseElement(segment, ring.SlotAt(p & mask), elementSize, offsets, channelId);
            }

            return;
        }

        for (long i = 0; i < slots; i++)
        {
            long cell = ring.SlotAt(i);
            long word = Volatile.Read(ref segment.Memory.Int64(cell + RingLayout.CellWordOffset));
            long sequence = word & RingLayout.SequenceMask;

            // A cell for position p is free with sequence p (≡ i) and holds an item with sequence p + 1
            // (published, or claimed by a reader that never returned it, or being replaced in place).
            if (((sequence - 1) & mask) == i)
            {
                ReleaseElement(segment, cell + RingLayout.CellItemOffset, elementSize, offsets, channelId);
            }
        }
    }

    private static void ReleaseElement(SegmentAttachment segment, long element, int elementSize, ReadOnlySpan<int> offsets, ulong channelId)
    {
        long budget = OwnedStorage.Budget(segment);
        var visitor = new QueuedVisitor(channelId);
        foreach (int offset in offsets)
        {
            if (offset < 0 || offset > elementSize - sizeof(ulong))
            {
                continue; // a damaged table entry
            }

            // The field's storage and, for a vector whose elements own storage, theirs below it (children
            // first); tolerant: whatever is not an allocated block, damaged, nested too deep or shared is
            // left alone, and the destruction goes on.
            ulong handle = BinaryPrimitives.ReadUInt64LittleEndian(segment.Memory.Span(element + offset, sizeof(ulong)));
            OwnedStorage.Walk(segment, handle, ref budget, ref visitor, tolerant: true);
        }
    }

    /// <summary>
    /// The destruction's visit: only storage the segment owns is the channel's to free (a block a live
    /// process holds is left with everything below it), and only container storage and this channel's
    /// queued records (never a block of another kind a damaged handle names: another object's ring, say).
    /// </summary>
    private readonly struct QueuedVisitor(ulong channelId) : IStorageVisitor
    {
        public bool Enter(SegmentAttachment segment, ShmHandle block, uint tag)
        {
            try
            {
                return segment.Heap.GetOwner(block).IsNone &&
                       tag is ContainerStorage.StringTag or ContainerStorage.VectorTag or RecordHeader.BlockTag;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                return false;
            }
        }

        public void Leave(SegmentAttachment segment, ShmHandle block, uint tag) => ReleaseQueuedBlock(segment, block, channelId);
    }

    /// <summary>Frees one block a queued item owns: only if the segment owns it, and for a record only if it is this channel's and queued.</summary>
    public static bool ReleaseQueuedBlock(SegmentAttachment segment, ShmHandle handle, ulong channelId)
    {
        SharedHeap heap = segment.Heap;
        try
        {
            long payload = heap.GetPayloadOffset(handle, out int length, out uint tag);
            if (!heap.GetOwner(handle).IsNone)
            {
                return false; // a live (or not yet reclaimed) process's: not the channel's to free
            }

            if (tag == RecordHeader.BlockTag)
            {
                if (length < RecordHeader.Size)
                {
                    return false;
                }

                ref RecordHeader record = ref segment.Memory.Ref<RecordHeader>(payload);
                ulong word = Volatile.Read(ref record.Ownership);
                if (record.Magic != RecordHeader.MagicValue || record.ChannelId != channelId || RecordHeader.StateOf(word) != RecordHeader.StateQueued ||
                    Interlocked.CompareExchange(ref record.Ownership, RecordHeader.Word(RecordHeader.TicketOf(word), RecordHeader.StateFreed), word) != word)
                {
                    return false;
                }
            }

            heap.Free(handle);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false; // not an allocated block (freed already, or a damaged handle)
        }
    }

    /// <summary>
    /// Frees the records of this channel the segment still owns: queued ones the ring walk missed, and
    /// those a writer killed between giving one to the channel and publishing it (or a reader killed
    /// between taking one from the ring and owning it) left behind.
    /// </summary>
    private static void ReleaseLeftoverRecords(SegmentAttachment segment, ulong channelId)
    {
        try
        {
            foreach (ShmHandle handle in segment.Heap.FindAllocated(RecordHeader.BlockTag, OwnerId.None))
            {
                ReleaseQueuedBlock(segment, handle, channelId);
            }
        }
        catch (InvalidSegmentException)
        {
            // A damaged heap: the walk stops; nothing was freed wrongly.
        }
    }
}
