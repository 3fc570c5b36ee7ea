using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Platform;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Segments;

/// <summary>
/// What one process's attachment to a segment holds: the mapped memory, its process-table slot and
/// <see cref="OwnerId"/>, the heap, the named-object directory, and the reclaim of dead processes.
/// Every layer above the segment (heap, objects, channels, topics) works with this type, never with
/// the public <see cref="SharedSegment"/> facade.
/// </summary>
/// <remarks>
/// Made by <see cref="SharedSegment"/> once the opener has mapped a ready segment; detached once, by
/// the facade's <see cref="SharedSegment.Dispose"/>. Thread-safe, except that <see cref="Detach"/> must
/// not run concurrently with other calls.
/// </remarks>
internal sealed class SegmentAttachment
{
    private readonly SharedMemoryObject _object;
    private ObjectDirectory? _directory;
    private int _detached;

    /// <summary>
    /// Claims a process-table slot in the mapped segment and returns what dead processes held. Takes
    /// ownership of <paramref name="backing"/> only on success; on failure the slot is given back and
    /// the caller disposes the mapping.
    /// </summary>
    public SegmentAttachment(SharedMemoryObject backing, SegmentMemory memory, SharedMemoryBackend backend, bool created)
    {
        _object = backing;
        Memory = memory;
        Backend = backend;
        IsCreator = created;
        Processes = new ProcessTable(memory);
        RemoveOnLastDetach = (Volatile.Read(ref memory.Header.Flags) & SegmentHeader.FlagRemoveOnLastDetach) != 0;

        ProcessIdentity me = PlatformServices.Processes.Current;
        OwnerId owner = Processes.TryClaim(me);
        OwnerId deadPredecessor = OwnerId.None;
        if (owner.IsNone)
        {
            // Full: take over the slot of a dead process (its old owner id stays dead for good), and
            // reclaim what it held once we have an identity to take the heap lock with.
            owner = Processes.TryTakeOverDeadSlot(me, out deadPredecessor);
            if (owner.IsNone)
            {
                ThrowHelper.ThrowInvalidOperation(
                    $"Segment '{Name}' already has {ProcessTable.Capacity} live attachments, the most its process table holds.");
            }
        }

        Owner = owner;
        try
        {
            Heap = new SharedHeap(this);
            if (!deadPredecessor.IsNone)
            {
                Heap.ReclaimOwner(deadPredecessor);
            }

            // Finding the dead is cheap while attaching (a /proc read per occupied slot), and it returns
            // what they held before this process starts to allocate.
            ReclaimDeadProcesses();
        }
        catch
        {
            // A damaged heap found while reclaiming: give the slot back; the caller disposes the mapping.
            Processes.Release(owner);
            throw;
        }
    }

    /// <summary>The segment's name.</summary>
    public string Name => _object.Name;

    /// <summary>The facility that backs the segment.</summary>
    public SharedMemoryBackend Backend { get; }

    /// <summary>Whether this attachment created the segment.</summary>
    public bool IsCreator { get; }

    /// <summary>Whether the segment's name goes with its last live attachment.</summary>
    public bool RemoveOnLastDetach { get; }

    /// <summary>This process's view of the segment's bytes: the only way to reach them.</summary>
    public SegmentMemory Memory { get; }

    /// <summary>
    /// Why the segment cannot give more, and what raises the limit, for an <see cref="OutOfSharedMemoryException"/>'s
    /// message: its MaxCapacity (an option of its creation), System V's fixed size, or the tmpfs of /dev/shm.
    /// </summary>
    public string DescribeMemoryLimit() => MemoryLimits.Describe(Backend, Volatile.Read(ref Memory.Header.Capacity), Memory.MaxCapacity);

    /// <summary>The table of attached processes.</summary>
    public ProcessTable Processes { get; }

    /// <summary>This attachment's identity in the process table: lock words and owned blocks name it.</summary>
    public OwnerId Owner { get; }

    /// <summary>The segment's heap, as this attachment uses it.</summary>
    public SharedHeap Heap { get; }

    /// <summary>The named-object directory (made on first use: a segment may never need one).</summary>
    public ObjectDirectory Directory => _directory ?? InitDirectory();

    /// <summary>Whether <see cref="Detach"/> has run.</summary>
    public bool IsDetached => Volatile.Read(ref _detached) != 0;

    private static int s_lastId;
    private readonly int _id = Interlocked.Increment(ref s_lastId);
    private int _blockingUses;

    /// <summary>This attachment's number in the process (what <see cref="SegmentUse"/> records).</summary>
    public int Id => _id;

    /// <summary>How long detaching waits for operations and blocked waits of other threads to leave the mapping.</summary>
    private static readonly TimeSpan s_drainLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Enters an operation that touches the mapping (a channel's read or write, a container's update...):
    /// until the returned scope is disposed, <see cref="Detach"/> on another thread waits before it unmaps.
    /// Two plain stores and a load (<see cref="SegmentUse"/>): cheap enough for every hot path.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The segment was detached.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Use EnterUse()
    {
        SegmentUse.Slot slot = SegmentUse.Current;
        int previous = slot.Attachment;
        Volatile.Write(ref slot.Attachment, _id);
        if (Volatile.Read(ref _detached) != 0)
        {
            slot.Attachment = previous;
            ThrowDisposed();
        }

        return new Use(slot, previous);
    }

    /// <summary>
    /// Leaves the operation this thread is in while user code runs (an item-dropped callback), so that the
    /// callback may dispose the segment; disposing the scope enters again, throwing
    /// <see cref="ObjectDisposedException"/> if the segment was detached meanwhile.
    /// </summary>
    public Suspended SuspendUse()
    {
        SegmentUse.Slot slot = SegmentUse.Current;
        int previous = slot.Attachment;
        Volatile.Write(ref slot.Attachment, 0);
        return new Suspended(this, slot, previous);
    }

    /// <summary>The scope of <see cref="EnterUse"/>.</summary>
    internal readonly ref struct Use(SegmentUse.Slot slot, int previous)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dispose() => Volatile.Write(ref slot.Attachment, previous);
    }

    /// <summary>The scope of <see cref="SuspendUse"/>.</summary>
    internal readonly ref struct Suspended(SegmentAttachment attachment, SegmentUse.Slot slot, int previous)
    {
        public void Dispose()
        {
            Volatile.Write(ref slot.Attachment, previous);
            if (previous != 0 && attachment.IsDetached)
            {
                slot.Attachment = 0;
                attachment.ThrowDisposed();
            }
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(SharedSegment), $"Segment '{Name}' was disposed.");

    /// <summary>
    /// Enters an operation that blocks a thread on words of this mapping (a synchronous wait of a topic or
    /// a synchronization object). <see cref="Detach"/> waits for such operations to leave before it unmaps,
    /// and they look at <see cref="IsDetached"/> after every sleep, so a thread blocked in a wait while
    /// another disposes the segment gets <see cref="ObjectDisposedException"/>, never a fault on an
    /// unmapped page.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The segment was detached already.</exception>
    public BlockingUse EnterBlocking()
    {
        Interlocked.Increment(ref _blockingUses);
        if (IsDetached)
        {
            Interlocked.Decrement(ref _blockingUses);
            throw new ObjectDisposedException(nameof(SharedSegment), $"Segment '{Name}' was disposed.");
        }

        return new BlockingUse(this);
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the segment is detached: for blocking loops, after every sleep.</summary>
    public void ThrowIfDetached()
    {
        if (IsDetached)
        {
            throw new ObjectDisposedException(nameof(SharedSegment), $"Segment '{Name}' was disposed while the operation waited.");
        }
    }

    internal void ExitBlocking() => Interlocked.Decrement(ref _blockingUses);

    /// <summary>The scope of <see cref="EnterBlocking"/>.</summary>
    internal readonly ref struct BlockingUse(SegmentAttachment attachment)
    {
        public void Dispose() => attachment.ExitBlocking();
    }

    /// <summary>
    /// Finds processes that attached and died without detaching, frees what they held (heap caches and
    /// blocks) and their slots. Returns how many were reclaimed.
    /// </summary>
    public int ReclaimDeadProcesses()
    {
        int reclaimed = 0;
        for (int i = 0; i < ProcessTable.Capacity; i++)
        {
            if (i == Owner.Slot)
            {
                continue;
            }

            if (Processes.TryBeginReclaim(i, Owner, out OwnerId dead))
            {
                Heap.ReclaimOwner(dead);
                Processes.EndReclaim(dead, Owner);
                reclaimed++;
            }
        }

        return reclaimed;
    }

    /// <summary>
    /// Ends this process's use of the segment: pending asynchronous waits on it fail, threads blocked in its
    /// waits and operations of other threads on it are waited for (they end with
    /// <see cref="ObjectDisposedException"/>), then the thread caches are returned, the blocks this
    /// attachment still owns freed, the slot given back, the mapping unmapped, and the name removed if this
    /// was the last live attachment of a remove-on-last-detach segment. Runs once; later calls do nothing.
    /// </summary>
    public void Detach()
    {
        if (Interlocked.Exchange(ref _detached, 1) != 0)
        {
            return;
        }

        // Every thread's next look at the flag sees it now; one already inside an operation is in its slot.
        Interlocked.MemoryBarrierProcessWide();
        if (SegmentUse.IsUsedHere(_id) || AsyncWaiter.IsCompletingHere)
        {
            // Disposed by user code that runs inside an operation on this segment (a serializer, a
            // continuation run synchronously): that operation must end before the mapping goes, so the rest
            // runs on the pool and waits for it there.
            ThreadPool.UnsafeQueueUserWorkItem(static attachment => attachment.FinishDetach(), this, preferLocal: false);
            return;
        }

        FinishDetach();
    }

    private void FinishDetach()
    {
        SegmentUse.WaitUntilUnused(_id, s_drainLimit);
        try
        {
            // Pending asynchronous waits on this mapping end first (their retries run operations on it), and
            // no new one can start: the waiter threads never watch an unmapped word.
            var disposed = new ObjectDisposedException(nameof(SharedSegment), $"Segment '{Name}' was disposed while the operation waited.");
            AsyncWaiter.Shared.FailWaits(Memory, 0, Memory.MaxCapacity, disposed, close: true);
            SemaphoreNotifier.FailWaits(Memory, disposed);

            // Threads blocked in synchronous waits on this mapping see the detach after their current sleep
            // and leave without touching it again.
            SpinWait.SpinUntil(() => Volatile.Read(ref _blockingUses) == 0, s_drainLimit);
            try
            {
                // Like the memory of an exiting process, blocks owned by the process end with its attachment.
                Heap.Detach();
                Heap.ReclaimOwner(Owner);
            }
            catch (InvalidSegmentException)
            {
                // The heap is damaged and cannot take them back. Detaching must still happen.
            }

            Processes.Release(Owner);
        }
        finally
        {
            bool removeName = false;
            try
            {
                // Only when no other process holds its attachment (the kernel dropped those of the dead), and
                // the segment holds no channel: a channel may hold items whose writes returned, and those
                // outlive the processes (the count is read while sole, so nobody changes it meanwhile).
                removeName = RemoveOnLastDetach && _object.TryBecomeSole() && Volatile.Read(ref Memory.Header.ChannelCount) == 0;
            }
            finally
            {
                _object.Unmap();
            }

            try
            {
                if (removeName && _object.IsCurrent())
                {
                    _object.RemoveName();
                }
            }
            finally
            {
                _object.Dispose();
            }
        }
    }

    private ObjectDirectory InitDirectory()
    {
        var directory = new ObjectDirectory(this);
        return Interlocked.CompareExchange(ref _directory, directory, null) ?? directory;
    }
}
