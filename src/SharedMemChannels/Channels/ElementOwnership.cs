using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// What a channel does with the heap storage its elements own (a record slot's block, a user struct's
/// <see cref="ShmString"/> and <see cref="ShmVector{T}"/> fields): the ownership handovers a write and a
/// read make, and the release of what a drop mode discards. <see cref="ChannelCore{T}"/> calls these
/// around its ring operations when the channel's elements own storage (and never otherwise: a plain
/// element pays one null test).
/// </summary>
/// <remarks>
/// The rule, for every kind: the storage is owned by the writer process until written, by the segment
/// while queued (the channel holds it), by the reader process once read. The heap's dead-process
/// reclaim frees what a dead writer or reader held; the channel's destruction frees what is queued
/// (<see cref="OwnedHandles.ReleaseQueued"/>, which needs nothing but the control block).
/// </remarks>
internal abstract class ElementOwnership<T>
    where T : unmanaged
{
    /// <summary>The element kind recorded with the channel (<see cref="ChannelControl.ElementKind"/>).</summary>
    public abstract int Kind { get; }

    /// <summary>The offsets inside <typeparamref name="T"/> of the handles an element owns.</summary>
    public abstract int[] OwnedOffsets { get; }

    /// <summary>
    /// For serialized elements: the serializer identity and the element type's name, stored with the
    /// channel when it is made and checked when it is opened; null for every other kind.
    /// </summary>
    public virtual Serialization.SerializedElementIdentity? Serialized => null;

    /// <summary>Called once the channel is attached, before any other call.</summary>
    public virtual void Bind(ChannelCore<T> core)
    {
    }

    /// <summary>The writer gives the item's storage to the channel (before the ring write). Misuse throws.</summary>
    public abstract void HandOver(in T item);

    /// <summary>The ring did not take the item (full, completed): the storage goes back to the writer.</summary>
    public abstract void TakeBack(in T item);

    /// <summary>The reader takes the storage of an item just taken from the ring; a damaged item throws <see cref="InvalidSegmentException"/>.</summary>
    public abstract void Receive(ref T item);

    /// <summary>A drop mode discarded a queued item: its storage is freed (after the user's callback).</summary>
    public abstract void Discard(in T item);
}

/// <summary>
/// Ownership for a <see cref="SharedChannel{T}"/> whose unmanaged <typeparamref name="T"/> has
/// <see cref="ShmString"/> / <see cref="ShmVector{T}"/> fields (found by <see cref="TypeLayout{T}.OwnedHandleOffsets"/>),
/// vectors of elements that own storage themselves included (<see cref="OwnedStorage"/> walks them).
/// A write gives each field's storage, all the way down, to the segment, a read gives it to the reading
/// process (each heap block's owner, so a dead reader's reclaim frees all of it), and <see cref="Release"/>,
/// a drop, or the channel's destruction frees it.
/// </summary>
internal sealed class OwnedFieldsOwnership<T> : ElementOwnership<T>
    where T : unmanaged
{
    private readonly int[] _offsets;
    private SegmentAttachment _segment = null!;
    private string _channel = string.Empty;

    public OwnedFieldsOwnership(int[] offsets) => _offsets = offsets;

    public override int Kind => ChannelControl.ElementKindPlain;

    public override int[] OwnedOffsets => _offsets;

    public override void Bind(ChannelCore<T> core)
    {
        _segment = core.Segment;
        _channel = core.Name;
    }

    /// <summary>
    /// Each field's storage, with what a vector's elements own below it, becomes the segment's: a dead
    /// writer's reclaim must not free what is queued. A field whose storage was freed (or is of another
    /// segment) is refused here, and what was handed over already goes back.
    /// </summary>
    public override void HandOver(in T item)
    {
        long budget = OwnedStorage.Budget(_segment);
        try
        {
            foreach (int offset in _offsets)
            {
                OwnedStorage.SetOwnership(_segment, SegmentMemory.ReadUInt64(in item, offset), ShmOwnership.Segment, ref budget, tolerant: false);
            }
        }
        catch
        {
            TakeBack(in item);
            throw;
        }
    }

    /// <summary>
    /// The ring refused the element: its storage becomes this process's (reclaimed if it dies), so that the
    /// writer may write it again later or <see cref="SharedChannel{T}.Release"/> it.
    /// </summary>
    public override void TakeBack(in T item)
    {
        // Tolerant: storage dropped and freed by the write itself (DropWrite) is not there to take back.
        long budget = OwnedStorage.Budget(_segment);
        foreach (int offset in _offsets)
        {
            OwnedStorage.SetOwnership(_segment, SegmentMemory.ReadUInt64(in item, offset), ShmOwnership.Process, ref budget, tolerant: true);
        }
    }

    public override void Receive(ref T item)
    {
        long budget = OwnedStorage.Budget(_segment);
        foreach (int offset in _offsets)
        {
            try
            {
                OwnedStorage.SetOwnership(_segment, SegmentMemory.ReadUInt64(in item, offset), ShmOwnership.Process, ref budget, tolerant: false);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"an element read from channel '{_channel}' holds a handle that is not an allocated block ({e.Message}).");
            }
        }
    }

    public override void Discard(in T item) => Release(in item, requireOwner: false);

    private void ThrowIfSegmentGone()
    {
        if (_segment.IsDetached)
        {
            ThrowHelper.ThrowObjectDisposed(nameof(SharedSegment)); // its mapping is gone: nothing may be read
        }
    }

    /// <summary>
    /// Frees the storage of the owned fields of <paramref name="item"/> that this process still holds, with
    /// what it owns below (the enumeration's release: the loop body may have released the element itself already).
    /// </summary>
    public void ReleaseIfHeld(in T item)
    {
        ThrowIfSegmentGone();
        SharedHeap heap = _segment.Heap;
        long budget = OwnedStorage.Budget(_segment);
        foreach (int offset in _offsets)
        {
            ulong handle = SegmentMemory.ReadUInt64(in item, offset);
            if (handle == 0)
            {
                continue;
            }

            try
            {
                if (heap.GetOwner(ShmHandle.FromValue(handle)) == heap.Owner)
                {
                    OwnedStorage.Free(_segment, handle, ref budget);
                }
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Released (or freed) already.
            }
        }
    }

    /// <summary>
    /// Frees the storage of every owned field of <paramref name="item"/>, with what its vectors' elements own
    /// (each block once, children first). With <paramref name="requireOwner"/>,
    /// only storage this process owns (an item it read) is accepted: an item still queued, or built and
    /// never written, is an <see cref="InvalidOperationException"/>, and nothing is freed.
    /// </summary>
    public void Release(in T item, bool requireOwner)
    {
        ThrowIfSegmentGone();
        SharedHeap heap = _segment.Heap;
        if (requireOwner)
        {
            foreach (int offset in _offsets)
            {
                ulong handle = SegmentMemory.ReadUInt64(in item, offset);
                if (handle != 0 && heap.GetOwner(ShmHandle.FromValue(handle)) != heap.Owner)
                {
                    ThrowHelper.ThrowInvalidOperation(
                        $"The element's storage ({ShmHandle.FromValue(handle)}) is not held by this process: only an element read here can be released (free the fields of an element that was never written yourself).");
                }
            }
        }

        Exception? first = null;
        long budget = OwnedStorage.Budget(_segment);
        foreach (int offset in _offsets)
        {
            ulong handle = SegmentMemory.ReadUInt64(in item, offset);
            if (handle == 0)
            {
                continue;
            }

            try
            {
                OwnedStorage.Free(_segment, handle, ref budget);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                first ??= e; // free the other fields first
            }
        }

        if (first is not null)
        {
            if (requireOwner)
            {
                throw first;
            }

            ThrowHelper.ThrowDamaged(_segment.Name, $"a dropped element of channel '{_channel}' held a handle that is not an allocated block ({first.Message}).");
        }
    }
}
