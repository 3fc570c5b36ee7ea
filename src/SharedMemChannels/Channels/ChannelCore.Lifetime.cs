using SharedMemChannels.Objects;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Channels;

/// <content>
/// The lifetime of a channel across processes: references (endpoint rows, cross-checked by a count),
/// detaching, removal, and the one place that decides whether a channel is destroyed. The rule: an item
/// whose write returned stays until a reader takes it or someone removes the channel on purpose, so a
/// channel that still holds items, or a completion no reader has seen, outlives its last reference
/// (unless <see cref="SharedChannelOptions.RetainUndelivered"/> is false); a drained one follows RaftLib's
/// reference counting.
/// </content>
internal sealed partial class ChannelCore<T>
{
    /// <summary>
    /// Takes a row of the endpoint table for this process (reusing a dead process's row), and counts the
    /// reference; under the directory's lock.
    /// </summary>
    private static int ClaimEndpoint(SegmentAttachment segment, string name, long control)
    {
        int row = OwnerRows.Claim(segment, control, ChannelControl.EndpointCount, ChannelLayout.EndpointOffset, out uint replaced);
        if (row < 0)
        {
            throw new InvalidOperationException($"Channel '{name}' already has {ChannelControl.EndpointCount} references, the most it records.");
        }

        // A dead holder's row taken over hands its (still counted) reference to us, and its waiters'
        // announcements are taken back; a free row, or one a damaged word held, is a new reference.
        ref ChannelControl c = ref segment.Memory.Ref<ChannelControl>(control);
        ref int roles = ref segment.Memory.Ref<ChannelEndpoint>(ChannelLayout.EndpointOffset(control, row)).Roles;
        if (replaced == 0 || !segment.Processes.CouldHaveBeen(new OwnerId(replaced)))
        {
            Interlocked.Increment(ref c.References);
        }
        else
        {
            TakeBackWaiters(segment, control, Interlocked.Exchange(ref roles, 0));
        }

        Volatile.Write(ref roles, 0);
        return row;
    }

    // ---------------------------------------------------------------- waiters of dead processes

    /// <summary>
    /// Records in this instance's endpoint row whether its waiters are announced on the ring's readers'
    /// (writers') event (the <see cref="WaiterLedger"/>'s callback). One compare-and-swap of the whole row,
    /// and only while the row still names this process: a row given back (or taken by another process
    /// meanwhile) never gets a bit of ours.
    /// </summary>
    private void RecordWaiting(int bit, bool announced)
    {
        int endpoint = _endpoint;
        if (endpoint < 0 || _segment.IsDetached)
        {
            return;
        }

        uint me = _segment.Owner.Value;
        ref long row = ref _segment.Memory.Int64(ChannelLayout.EndpointOffset(_control, endpoint));
        while (true)
        {
            long seen = Volatile.Read(ref row);
            if ((uint)seen != me)
            {
                return;
            }

            int roles = (int)(seen >> 32);
            int next = announced ? roles | bit : roles & ~bit;
            if (next == roles || Interlocked.CompareExchange(ref row, ((long)next << 32) | me, seen) == seen)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Takes back the waiter announcements that processes which died while waiting left on the channel's
    /// ring (their rows say so), under the directory's lock: run by the dead-reference sweep at every
    /// attach and <c>ReclaimDeadProcesses</c>. Returns how many it took back.
    /// </summary>
    internal static int TakeBackDeadWaitersLocked(SegmentAttachment segment, long control)
    {
        int taken = 0;
        for (int i = 0; i < ChannelControl.EndpointCount; i++)
        {
            ref long row = ref segment.Memory.Int64(ChannelLayout.EndpointOffset(control, i));
            long seen = Volatile.Read(ref row);
            var owner = new OwnerId((uint)seen);
            int roles = (int)(seen >> 32);
            int waiting = roles & (ChannelEndpoint.WaitingReaders | ChannelEndpoint.WaitingWriters);
            if (waiting == 0 || owner.IsNone || segment.Processes.IsAlive(owner) || !segment.Processes.CouldHaveBeen(owner))
            {
                continue;
            }

            // Unrecord, then decrement (the ledger's order): the dead cannot race us, and a second sweep finds nothing.
            if (Interlocked.CompareExchange(ref row, ((long)(roles & ~waiting) << 32) | (uint)seen, seen) == seen)
            {
                taken += TakeBackWaiters(segment, control, waiting);
            }
        }

        return taken;
    }

    /// <summary>Takes one announcement off each ring event <paramref name="roles"/> names as waited on (never below zero); how many it took.</summary>
    private static int TakeBackWaiters(SegmentAttachment segment, long control, int roles)
    {
        ref ChannelControl c = ref segment.Memory.Ref<ChannelControl>(control);
        if ((roles & (ChannelEndpoint.WaitingReaders | ChannelEndpoint.WaitingWriters)) == 0 || Volatile.Read(ref c.State) == ChannelControl.StateInitializing)
        {
            return 0;
        }

        RingHeader header;
        try
        {
            header = RingHeader.Attach(segment.Memory, c.RingOffset, c.RingLength, (RingKind)c.RingKind, c.ElementSize, segment.Processes);
        }
        catch (Exception e) when (e is InvalidSegmentException or ArgumentException)
        {
            return 0; // a damaged ring: its counts mean nothing
        }

        int taken = 0;
        if ((roles & ChannelEndpoint.WaitingReaders) != 0)
        {
            taken += DecrementToZero(ref segment.Memory.Int32(header.Offset + RingLayout.ReadersEventWaitersOffset));
        }

        if ((roles & ChannelEndpoint.WaitingWriters) != 0)
        {
            taken += DecrementToZero(ref segment.Memory.Int32(header.Offset + RingLayout.WritersEventWaitersOffset));
        }

        return taken;
    }

    private static int DecrementToZero(ref int count)
    {
        while (true)
        {
            int seen = Volatile.Read(ref count);
            if (seen <= 0)
            {
                return 0;
            }

            if (Interlocked.CompareExchange(ref count, seen - 1, seen) == seen)
            {
                return 1;
            }
        }
    }

    /// <summary>
    /// Notes that a reader process has seen the channel completed and drained (a read or a wait reported
    /// the end): the completion is delivered, and the channel no longer outlives its last reference for it.
    /// </summary>
    private void NoteCompletionSeen()
    {
        if ((_roles & ChannelEndpoint.RoleReader) != 0 && Volatile.Read(ref Control.CompletionSeen) == 0 && _ring.Header.IsCompleted && _ring.Count == 0)
        {
            Volatile.Write(ref Control.CompletionSeen, 1);
        }
    }

    /// <summary>
    /// After a failed initialization by this process: gives up the initializer's role, so that the channel,
    /// still initializing and never ready, goes with the last reference (ours, normally: a failed create
    /// leaves nothing), or another opener with options may lay it out.
    /// </summary>
    private void AbandonInitialization()
    {
        ref ChannelControl c = ref Control;
        if (Volatile.Read(ref c.State) == ChannelControl.StateInitializing)
        {
            Interlocked.CompareExchange(ref c.Initializer, 0, _segment.Owner.Value);
        }
    }

    /// <summary>Gives up this process's endpoint row and leases. The channel stays for the others.</summary>
    public void Detach()
    {
        // The next read or write of this instance takes the slow path, which sees it detached; other threads'
        // operations on it have ended when this returns true, and this thread is inside a use of the segment.
        if (Interlocked.Exchange(ref _detached, 1) != 0 || !TryBeginDetach(out SegmentAttachment.Use use))
        {
            return;
        }

        using (use)
        try
        {
            // This process's pending operations on the channel end with it (unless another instance here
            // still uses the channel: the waits are per word, not per instance), before anything is freed.
            if (ReleaseInstance())
            {
                var disposed = new ObjectDisposedException(nameof(SharedChannel<T>), $"Channel '{Name}' was disposed while the operation waited.");
                AsyncWaiter.Shared.FailWaits(_segment.Memory, _ring.Header.Offset, RingLayout.SlotsOffset, disposed);
                AsyncWaiter.Shared.FailWaits(_segment.Memory, _control, ChannelControl.Size, disposed);
            }

            (_ring as IDisposable)?.Dispose(); // an unbounded ring's pins: the chunks it held may be freed
            ReleaseReference(lastInstanceHere: !HasOtherInstance());
        }
        catch (InvalidSegmentException)
        {
            // A damaged control block: nothing more to give back.
        }
    }

    /// <summary>
    /// Gives back this instance's reference (its endpoint row and its count) and, with the process's last
    /// instance, its leases; then, as one step under the directory's lock, destroys the channel if nothing
    /// keeps it any more (<see cref="DestroyIfUnreferencedLocked"/>).
    /// </summary>
    private void ReleaseReference(bool lastInstanceHere)
    {
        NotifierSemaphores.Release(_notifierHold);
        _notifierHold = null;
        int endpoint = _endpoint;
        _endpoint = -1;
        uint me = _segment.Owner.Value;
        using (_segment.Directory.Lock())
        {
            if (lastInstanceHere)
            {
                Interlocked.CompareExchange(ref Control.ReaderLease, 0, me);
                Interlocked.CompareExchange(ref Control.WriterLease, 0, me);
            }

            if (endpoint >= 0)
            {
                ref ChannelEndpoint row = ref Endpoint(endpoint);
                Volatile.Write(ref row.Roles, 0);
                Interlocked.CompareExchange(ref row.Owner, 0, me);
                Interlocked.Decrement(ref Control.References);
            }

            DestroyIfUnreferencedLocked(_segment, Name, _controlBlock, _control);
        }
    }

    /// <summary>Instances of each channel in this process, by mapping and control block.</summary>
    private static readonly Dictionary<(SegmentMemory Memory, long Control), int> s_instances = [];

    private void AddInstance()
    {
        lock (s_instances)
        {
            s_instances[(_segment.Memory, _control)] = s_instances.GetValueOrDefault((_segment.Memory, _control)) + 1;
        }
    }

    /// <summary>Drops this instance from the count; true when it was the process's last of the channel.</summary>
    private bool ReleaseInstance()
    {
        lock (s_instances)
        {
            int left = s_instances.GetValueOrDefault((_segment.Memory, _control)) - 1;
            if (left > 0)
            {
                s_instances[(_segment.Memory, _control)] = left;
                return false;
            }

            s_instances.Remove((_segment.Memory, _control));
            return true;
        }
    }

    private bool HasOtherInstance()
    {
        lock (s_instances)
        {
            return s_instances.ContainsKey((_segment.Memory, _control));
        }
    }

    // ---------------------------------------------------------------- removal

    /// <summary>Whether the channel <paramref name="name"/> exists and is not removed (nobody can open a removed one, as with topics).</summary>
    public static bool Exists(SegmentAttachment segment, string name)
    {
        ObjectDirectory directory = segment.Directory;
        using (directory.Lock())
        {
            return directory.TryFindLocked<ChannelControl>(ChannelLayout.ObjectName(name), out ObjectRef found) &&
                Volatile.Read(ref segment.Memory.Ref<ChannelControl>(found.ValueOffset).State) != ChannelControl.StateRemoved;
        }
    }

    /// <summary>
    /// Removes the channel <paramref name="name"/>: it is completed for everyone with
    /// <see cref="ChannelRemovedException"/>, nobody can open it any more, and its memory goes when the last
    /// process holding it lets go (now, if none does). False when there is no such channel.
    /// </summary>
    public static bool Remove(SegmentAttachment segment, string name)
    {
        ObjectDirectory directory = segment.Directory;
        using (directory.Lock())
        {
            if (!directory.TryFindLocked<ChannelControl>(ChannelLayout.ObjectName(name), out ObjectRef found))
            {
                return false; // none, or not a channel control block under that name
            }

            long control = found.ValueOffset;
            ref ChannelControl c = ref segment.Memory.Ref<ChannelControl>(control);
            int state = Volatile.Read(ref c.State);
            if (state == ChannelControl.StateRemoved || Interlocked.CompareExchange(ref c.State, ChannelControl.StateRemoved, state) != state)
            {
                return false;
            }

            if (state == ChannelControl.StateReady && Volatile.Read(ref c.Magic) == ChannelControl.MagicValue)
            {
                try
                {
                    var header = RingHeader.Attach(segment.Memory, c.RingOffset, c.RingLength, (RingKind)c.RingKind, c.ElementSize, segment.Processes);
                    header.TryComplete(segment.Owner, new ChannelRemovedException($"Channel '{name}' was removed from segment '{segment.Name}'."));
                    object? notifiers = null;
                    try
                    {
                        notifiers = NotifierSemaphores.Attach(segment.Name, c.Notifier, header.ReadersEvent, header.WritersEvent);
                    }
                    catch (Exception e) when (e is InvalidSegmentException or IOException or UnauthorizedAccessException)
                    {
                        // Its semaphores are gone or foreign: the futex words still wake, and sleepers look again after a slice.
                    }

                    header.ReadersEvent.Signal();
                    header.WritersEvent.Signal();
                    NotifierSemaphores.Release(notifiers);
                }
                catch (InvalidSegmentException)
                {
                    // A damaged ring: nothing to complete; the channel still goes.
                }

                Interlocked.Increment(ref c.CompletionSequence);
                Platform.PlatformServices.Futex.Wake(ref c.CompletionSequence, int.MaxValue);
            }

            DestroyIfUnreferencedLocked(segment, name, found.Block, control);
            return true;
        }
    }

    /// <summary>
    /// The end of a channel, under the directory's lock (<see cref="ObjectDirectory.Lock"/>), so that no
    /// process can find and reference it meanwhile: destroys it (what its queued items own, its ring or
    /// chain, its semaphores, its control block) when no live process holds a reference
    /// (<see cref="IsUnreferencedLocked"/>) and it is either removed; or ready, not persistent, and either
    /// drained with its completion (if any) seen by a reader, or made not to retain what it holds
    /// (RaftLib's reference counting); or still initializing with no live initializer (a failed or
    /// killed creation). Returns whether it was destroyed.
    /// </summary>
    internal static bool DestroyIfUnreferencedLocked(SegmentAttachment segment, string name, ShmHandle controlBlock, long control)
    {
        ref ChannelControl c = ref segment.Memory.Ref<ChannelControl>(control);
        int state = Volatile.Read(ref c.State);
        int flags = Volatile.Read(ref c.Flags);
        switch (state)
        {
            case ChannelControl.StateRemoved:
                break;
            case ChannelControl.StateReady when (flags & ChannelControl.FlagPersistent) == 0:
                break;
            case ChannelControl.StateInitializing:
                uint initializer = Volatile.Read(ref c.Initializer);
                if (initializer != 0 && segment.Processes.IsAlive(new OwnerId(initializer)))
                {
                    return false;
                }

                break;
            default:
                return false;
        }

        // Rows of this process count too: another instance here may still use the channel.
        if (!IsUnreferencedLocked(segment, control) ||
            (state == ChannelControl.StateReady && (flags & ChannelControl.FlagDiscardUndelivered) == 0 && HoldsUndelivered(segment, ref c)))
        {
            return false;
        }

        Volatile.Write(ref c.State, ChannelControl.StateRemoved); // whatever follows, nobody opens it again
        bool unbounded = c.RingKind == (int)RingKind.Unbounded;
        bool prioritized = c.RingKind == (int)RingKind.Prioritized;
        long ringOffset = c.RingOffset;
        long ringLength = c.RingLength;
        ulong ring = Interlocked.Exchange(ref c.RingBlock, 0);
        ChannelControl last = c; // the notifier's identity outlives the block
        if (ring != 0)
        {
            // Free the storage queued items own, and the records of this channel a crash left in the
            // segment, while the control block still describes them.
            OwnedHandles.ReleaseAll(segment, control);
            if (unbounded)
            {
                UnboundedRing<byte>.FreeChain(segment, ringOffset, ringLength);
            }
            else if (prioritized)
            {
                PriorityRing<byte>.FreeArrays(segment, ringOffset, ringLength);
            }

            try
            {
                segment.Heap.Free(ShmHandle.FromValue(ring));
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                // Freed already.
            }
        }

        NotifierSemaphores.Destroy(segment.Name, ref last.Notifier);
        bool destroyed = segment.Directory.DestroyLocked(ChannelLayout.ObjectName(name), controlBlock);
        if ((last.Flags & ChannelControl.FlagCounted) != 0)
        {
            UncountChannel(segment);
        }

        return destroyed;
    }

    /// <summary>
    /// Whether no live process holds the channel, cross-checked: no endpoint row names a live process or an
    /// owner the process table never had (a damaged word), and the count of references taken is covered
    /// by the dead holders' rows. A reference whose row was damaged away (zeroed, or overwritten) keeps
    /// the channel until its holder gives it back, rather than the channel being freed under it.
    /// </summary>
    private static bool IsUnreferencedLocked(SegmentAttachment segment, long control)
    {
        (int live, int dead, int damaged) = OwnerRows.Census(segment, control, ChannelControl.EndpointCount, ChannelLayout.EndpointOffset);
        return live == 0 && damaged == 0 && Volatile.Read(ref segment.Memory.Ref<ChannelControl>(control).References) <= dead;
    }

    /// <summary>
    /// Whether a ready channel holds something no reader has taken: items, or a completion no reader saw.
    /// A ring that cannot be read holds what it may hold: nothing is freed on the word of damaged memory.
    /// </summary>
    private static bool HoldsUndelivered(SegmentAttachment segment, ref ChannelControl c)
    {
        try
        {
            RingHeader header = RingHeader.Attach(segment.Memory, c.RingOffset, c.RingLength, (RingKind)c.RingKind, c.ElementSize, segment.Processes);
            return Volatile.Read(ref header.Tail) - Volatile.Read(ref header.Head) > 0 ||
                (header.IsCompleted && Volatile.Read(ref c.CompletionSeen) == 0);
        }
        catch (Exception e) when (e is InvalidSegmentException or ArgumentException)
        {
            return true;
        }
    }

    /// <summary>Counts a channel being laid out in its segment's header (see <see cref="SegmentHeader.ChannelCount"/>).</summary>
    private static void CountChannel(SegmentAttachment segment) => Interlocked.Increment(ref segment.Memory.Header.ChannelCount);

    /// <summary>Uncounts a destroyed channel; never below zero (a damaged count keeps nothing it should not).</summary>
    private static void UncountChannel(SegmentAttachment segment)
    {
        ref int count = ref segment.Memory.Header.ChannelCount;
        int seen;
        do
        {
            seen = Volatile.Read(ref count);
        }
        while (seen > 0 && Interlocked.CompareExchange(ref count, seen - 1, seen) != seen);
    }
}
