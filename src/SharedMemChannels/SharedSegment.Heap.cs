using SharedMemChannels.Segments;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;

namespace SharedMemChannels;

/// <content>The heap: allocating, freeing and reaching blocks of the segment.</content>
public sealed partial class SharedSegment
{
    /// <summary>The largest single allocation (1 GiB).</summary>
    public const int MaxAllocationSize = SharedHeap.MaxAllocationSize;

    internal SharedHeap HeapInternal => _attachment.Heap;

    private SharedHeap _heap => _attachment.Heap;

    /// <summary>
    /// Allocates a block of <paramref name="size"/> bytes owned by this process (reclaimed if the
    /// process dies holding it). Grows the segment when the heap is full and
    /// <see cref="MaxCapacity"/> allows.
    /// </summary>
    /// <param name="size">Usable bytes, 1 to <see cref="MaxAllocationSize"/>.</param>
    /// <returns>The block's handle; <see cref="GetSpan"/> gives exactly <paramref name="size"/> bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is 0 or less, or above the maximum.</exception>
    /// <exception cref="OutOfSharedMemoryException">The heap has no room and the segment cannot grow.</exception>
    public ShmHandle Allocate(int size) => Allocate(size, ShmOwnership.Process);

    /// <summary>Allocates a block of <paramref name="size"/> bytes with the given ownership.</summary>
    /// <param name="size">Usable bytes, 1 to <see cref="MaxAllocationSize"/>.</param>
    /// <param name="ownership">Whether the block dies with this process or lives in the segment.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is 0 or less, or above the maximum.</exception>
    /// <exception cref="OutOfSharedMemoryException">The heap has no room and the segment cannot grow.</exception>
    public ShmHandle Allocate(int size, ShmOwnership ownership)
    {
        if (!TryAllocate(size, ownership, out ShmHandle handle))
        {
            ThrowOutOfMemory(size);
        }

        return handle;
    }

    /// <summary>Allocates a block owned by this process; false when the heap has no room and cannot grow.</summary>
    /// <param name="size">Usable bytes, 1 to <see cref="MaxAllocationSize"/>.</param>
    /// <param name="handle">The block, or <see cref="ShmHandle.Null"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is 0 or less, or above the maximum.</exception>
    public bool TryAllocate(int size, out ShmHandle handle) => TryAllocate(size, ShmOwnership.Process, out handle);

    /// <summary>Allocates a block with the given ownership; false when the heap has no room and cannot grow.</summary>
    /// <param name="size">Usable bytes, 1 to <see cref="MaxAllocationSize"/>.</param>
    /// <param name="ownership">Whether the block dies with this process or lives in the segment.</param>
    /// <param name="handle">The block, or <see cref="ShmHandle.Null"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is 0 or less, or above the maximum.</exception>
    public bool TryAllocate(int size, ShmOwnership ownership, out ShmHandle handle)
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        if ((uint)ownership > (uint)ShmOwnership.Segment)
        {
            ThrowUnknownOwnership(ownership);
        }

        return _heap.TryAllocate(size, ownership, 0, out handle);
    }

    /// <summary>Returns a block to the heap. Any process may free any block.</summary>
    /// <param name="handle">A block of this segment.</param>
    /// <exception cref="ArgumentException">The handle is null or does not refer to a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">The block was freed already, or the handle is stale.</exception>
    public void Free(ShmHandle handle)
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        _heap.Free(handle);
    }

    /// <summary>The block's bytes: exactly the size it was allocated with. Valid until the block is freed.</summary>
    /// <param name="handle">A block of this segment.</param>
    /// <exception cref="ArgumentException">The handle is null or does not refer to a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">The block was freed, or the handle is stale.</exception>
    public Span<byte> GetSpan(ShmHandle handle)
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return _heap.GetSpan(handle);
    }

    /// <summary>
    /// Changes who owns a block: <see cref="ShmOwnership.Segment"/> lets it outlive this process (do this
    /// before another process relies on it); <see cref="ShmOwnership.Process"/> makes this process its owner.
    /// </summary>
    /// <param name="handle">A block of this segment.</param>
    /// <param name="ownership">The new owner.</param>
    /// <exception cref="ArgumentException">The handle is null or does not refer to a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">The block was freed, or the handle is stale.</exception>
    public void SetOwnership(ShmHandle handle, ShmOwnership ownership)
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        if ((uint)ownership > (uint)ShmOwnership.Segment)
        {
            ThrowUnknownOwnership(ownership);
        }

        _heap.SetOwnership(handle, ownership);
    }

    /// <summary>Who owns a block now.</summary>
    /// <param name="handle">A block of this segment.</param>
    /// <exception cref="ArgumentException">The handle is null or does not refer to a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">The block was freed, or the handle is stale.</exception>
    public ShmOwnership GetOwnership(ShmHandle handle)
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return _heap.GetOwner(handle).IsNone ? ShmOwnership.Segment : ShmOwnership.Process;
    }

    /// <summary>
    /// Gives the calling thread's cache of small free blocks back to the heap now (RaftLib's
    /// <c>close_tls_structure</c>). A thread's cache is made on its first small allocation or free and
    /// returns by itself when the thread ends and when the segment is disposed; call this from a
    /// long-lived thread (a pool thread, say) that is done with the segment for a while, so its stock
    /// serves other threads and processes. Calling it again, or from a thread that has no cache, does
    /// nothing; the thread may allocate again afterwards (a new cache is made).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The segment was disposed.</exception>
    /// <exception cref="InvalidSegmentException">The heap is damaged (the blocks stay this process's until it detaches).</exception>
    public void ReleaseThreadCache()
    {
        ThrowIfDisposed();
        _heap.ReleaseCurrentThreadCache();
    }

    /// <summary>Counts the heap's blocks and bytes (one walk over the heap, under its lock).</summary>
    public HeapStatistics GetHeapStatistics()
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return _heap.GetStatistics();
    }

    /// <summary>Checks every invariant of the heap; throws <see cref="InvalidSegmentException"/> at the first broken one.</summary>
    internal void ValidateHeap()
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        _heap.Validate();
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowUnknownOwnership(ShmOwnership ownership) =>
        ThrowHelper.ThrowArgumentOutOfRange(nameof(ownership), ownership, "Unknown ownership.");

    private void ThrowOutOfMemory(int size)
    {
        HeapStatistics stats = _heap.GetStatistics();
        throw new OutOfSharedMemoryException(size, stats.FreeBytes, stats.LargestFreeBlock, _attachment.DescribeMemoryLimit());
    }
}
