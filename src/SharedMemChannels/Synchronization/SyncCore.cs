using SharedMemChannels.Common;
using SharedMemChannels.Objects;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>What one attempt to take a synchronization object found.</summary>
internal enum TakeResult
{
    /// <summary>Not available now: wait for a change.</summary>
    NotYet,

    /// <summary>Taken.</summary>
    Taken,

    /// <summary>Taken over from a holder that died holding it (a mutex).</summary>
    Abandoned,
}

/// <summary>
/// One process's hold on a named synchronization object: its control block in the segment
/// (<see cref="SyncControl"/>) and the event count its waiters sleep on. The public
/// <see cref="SharedMutex"/>, <see cref="SharedEvent"/> and <see cref="SharedSemaphore"/> are its views;
/// each supplies the one step that tries to take it, and the waiting here is common to all three:
/// announce on the event count, re-check, sleep (a futex wait, or asynchronously on the process's waiter
/// thread, so that no thread blocks per pending asynchronous wait), in slices after which the step is
/// told to look at its holder's liveness.
/// </summary>
internal sealed class SyncCore
{
    /// <summary>How long a waiter sleeps before it looks whether the holder still lives.</summary>
    private static readonly TimeSpan s_slice = TimeSpan.FromMilliseconds(50);

    private readonly SegmentAttachment _segment;
    private readonly long _control;
    private readonly EventCount _event;
    private ulong _generation;
    private int _disposed;

    private SyncCore(SegmentAttachment segment, string name, int kind, ObjectRef found)
    {
        _segment = segment;
        Name = name;
        Kind = kind;
        _control = found.ValueOffset;
        _event = new EventCount(segment.Memory, _control + SyncControl.SequenceOffset, _control + SyncControl.WaitersOffset);
    }

    public string Name { get; }

    public int Kind { get; }

    public SegmentAttachment Segment => _segment;

    public ref SyncControl Control => ref _segment.Memory.Ref<SyncControl>(_control);

    /// <summary>The state word (mutex: holder; event: set; semaphore: count).</summary>
    public ref int State => ref _segment.Memory.Int32(_control + SyncControl.StateOffset);

    public OwnerId Owner => _segment.Owner;

    public ProcessTable Processes => _segment.Processes;

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal enum OpenMode
    {
        Create,
        Open,
        OpenOrCreate,
    }

    /// <summary>Creates or opens the object <paramref name="name"/> of <paramref name="kind"/>, made whole by the directory.</summary>
    public static SyncCore Open(SharedSegment segment, string name, int kind, in SyncControl initial, OpenMode mode)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        segment.ThrowIfDisposed();
        SegmentAttachment attachment = segment.Attachment;
        string objectName = SyncLayout.ObjectName(name);
        ObjectRef found;
        SyncControl stamped = initial;
        stamped.Generation = NewGeneration();
        try
        {
            found = attachment.Directory.FindOrConstruct(objectName, stamped, mayFind: mode != OpenMode.Create, mayCreate: mode != OpenMode.Open, out _);
        }
        catch (InvalidOperationException) when (mode == OpenMode.Create)
        {
            throw new InvalidOperationException($"Segment '{attachment.Name}' already has a synchronization object '{name}'.");
        }
        catch (InvalidCastException e)
        {
            throw new InvalidSegmentException(attachment.Name, $"the object for synchronization object '{name}' is not a synchronization control block ({e.Message})");
        }

        if (found.IsNull)
        {
            throw new KeyNotFoundException($"Segment '{attachment.Name}' has no synchronization object '{name}'.");
        }

        var core = new SyncCore(attachment, name, kind, found);
        ref SyncControl c = ref core.Control;
        core._generation = Volatile.Read(ref c.Generation);
        core.CheckIdentity();
        if (c.Kind != kind)
        {
            throw new InvalidCastException(
                $"Synchronization object '{name}' of segment '{attachment.Name}' is a {SyncLayout.KindName(c.Kind)}, not a {SyncLayout.KindName(kind)}.");
        }

        return core;
    }

    /// <summary>Removes the object: its waiters in every process fail, and its block is freed. False when there is none.</summary>
    public static bool Remove(SharedSegment segment, string name)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        segment.ThrowIfDisposed();
        SegmentAttachment attachment = segment.Attachment;
        ObjectRef found;
        try
        {
            found = attachment.Directory.FindOrConstruct(SyncLayout.ObjectName(name), default(SyncControl), mayFind: true, mayCreate: false, out _);
        }
        catch (InvalidCastException)
        {
            return false;
        }

        if (found.IsNull)
        {
            return false;
        }

        // Waiters re-check the identity after every wake and fail; then the block goes.
        ref SyncControl c = ref attachment.Memory.Ref<SyncControl>(found.ValueOffset);
        Volatile.Write(ref c.Magic, 0);
        new EventCount(attachment.Memory, found.ValueOffset + SyncControl.SequenceOffset, found.ValueOffset + SyncControl.WaitersOffset).Signal();
        return attachment.Directory.Destroy(SyncLayout.ObjectName(name), found.Block);
    }

    public static void ValidateName(string name)
    {
        SharedName.Validate(name, nameof(name));
        if (name.Length > SyncLayout.MaxNameLength)
        {
            throw new ArgumentException($"A synchronization object's name has at most {SyncLayout.MaxNameLength} characters.", nameof(name));
        }
    }

    private static ulong NewGeneration()
    {
        ulong generation;
        do
        {
            generation = (ulong)Random.Shared.NextInt64();
        }
        while (generation == 0);

        return generation;
    }

    /// <summary>
    /// Checks that the control block is still this object: not removed, not damaged, and not another object
    /// made since in the same block (its generation differs).
    /// </summary>
    public void CheckIdentity()
    {
        ref SyncControl c = ref Control;
        ulong magic = Volatile.Read(ref c.Magic);
        if (magic == 0 || Volatile.Read(ref c.Generation) != _generation)
        {
            throw new InvalidOperationException($"Synchronization object '{Name}' was removed from segment '{_segment.Name}'.");
        }

        if (magic != SyncControl.MagicValue || c.Version != SyncControl.CurrentVersion || c.Kind is < SyncControl.KindMutex or > SyncControl.KindSemaphore)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"synchronization object '{Name}' has a damaged control block.");
        }
    }

    /// <summary>Wakes every waiter of the object (in every process): call after changing the state.</summary>
    public void Signal() => _event.Signal();

    /// <summary>
    /// Waits until <paramref name="take"/> succeeds or <paramref name="timeout"/> passes (null: no limit).
    /// <paramref name="take"/> is called with true after a sleep slice with no change: it should then
    /// look at the holder's liveness.
    /// </summary>
    public TakeResult Wait(Func<SyncCore, bool, TakeResult> take, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        // The whole wait, first try included, is a blocking use: a detach waits for it before it unmaps.
        using SegmentAttachment.BlockingUse use = _segment.EnterBlocking();
        TakeResult result = Attempt(take, afterSlice: false);
        if (result != TakeResult.NotYet)
        {
            return result;
        }

        long deadline = Deadline(timeout);
        var spinner = default(SpinWait);
        while (true)
        {
            if (!spinner.NextSpinWillYield)
            {
                spinner.SpinOnce();
                result = Attempt(take, afterSlice: false);
                if (result != TakeResult.NotYet)
                {
                    return result;
                }

                continue;
            }

            int token = _event.PrepareWait();
            result = Attempt(take, afterSlice: false, announced: true);
            if (result != TakeResult.NotYet)
            {
                _event.CancelWait();
                return result;
            }

            TimeSpan? slice = Slice(deadline);
            if (slice == TimeSpan.Zero)
            {
                _event.CancelWait();
                return TakeResult.NotYet;
            }

            bool woken = cancellationToken.CanBeCanceled
                ? _event.WaitAsync(token, slice, cancellationToken).AsTask().GetAwaiter().GetResult()
                : _event.Wait(token, slice);
            ThrowIfDisposed();
            result = Attempt(take, afterSlice: !woken);
            if (result != TakeResult.NotYet)
            {
                return result;
            }
        }
    }

    /// <summary>As <see cref="Wait"/>, asynchronously: the sleeps are served by the process's waiter thread.</summary>
    public async ValueTask<TakeResult> WaitAsync(Func<SyncCore, bool, TakeResult> take, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        long deadline = Deadline(timeout);
        bool woken = true;
        bool retry = false;
        while (true)
        {
            // Everything that touches the mapping runs in a use of the segment, also after a wake on a pool
            // thread: a detach on another thread waits for it, or it sees the detach and throws.
            if (StepAsync(take, deadline, retry, afterSlice: !woken, cancellationToken, out ValueTask<bool> wait) is { } result)
            {
                return result;
            }

            woken = await wait.ConfigureAwait(false);
            retry = true;
        }
    }

    /// <summary>
    /// One round of <see cref="WaitAsync"/>: after a wake, try (with what the sleep told); announce, try again,
    /// and register the next sleep in <paramref name="wait"/>. A result ends the wait (NotYet: the deadline passed).
    /// </summary>
    private TakeResult? StepAsync(Func<SyncCore, bool, TakeResult> take, long deadline, bool retry, bool afterSlice, CancellationToken cancellationToken, out ValueTask<bool> wait)
    {
        wait = default;
        using SegmentAttachment.Use use = EnterUse();
        TakeResult result;
        if (retry)
        {
            result = Attempt(take, afterSlice);
            if (result != TakeResult.NotYet)
            {
                return result;
            }
        }

        int token = _event.PrepareWait();
        result = Attempt(take, afterSlice: false, announced: true);
        if (result != TakeResult.NotYet)
        {
            _event.CancelWait();
            return result;
        }

        TimeSpan? slice = Slice(deadline);
        if (slice == TimeSpan.Zero)
        {
            _event.CancelWait();
            return TakeResult.NotYet;
        }

        wait = _event.WaitAsync(token, slice, cancellationToken);
        return null;
    }

    /// <summary>Enters a use of the segment for an operation on the object (<see cref="ObjectDisposedException"/> when it or its segment was disposed).</summary>
    public SegmentAttachment.Use EnterUse()
    {
        SegmentAttachment.Use use = _segment.EnterUse();
        if (IsDisposed)
        {
            use.Dispose();
            ThrowIfDisposed();
        }

        return use;
    }

    private TakeResult Attempt(Func<SyncCore, bool, TakeResult> take, bool afterSlice, bool announced = false)
    {
        try
        {
            CheckIdentity();
            TakeResult result = take(this, afterSlice);
            if (result != TakeResult.NotYet && Volatile.Read(ref Control.Generation) != _generation)
            {
                // Removed, and another object made in the block, between the check and the take: what was
                // taken belongs to that object. Give it back, then fail as a waiter of a removed object does.
                GiveBack();
                CheckIdentity();
            }

            return result;
        }
        catch when (announced)
        {
            _event.CancelWait();
            throw;
        }
    }

    /// <summary>Undoes a take that reached another object made in this object's block.</summary>
    private void GiveBack()
    {
        ref SyncControl c = ref Control;
        ref int state = ref State;
        switch (c.Kind)
        {
            case SyncControl.KindMutex:
                Interlocked.CompareExchange(ref state, 0, (int)Owner.Value);
                break;
            case SyncControl.KindEvent when (c.Flags & SyncControl.FlagAutoReset) != 0:
                Interlocked.Exchange(ref state, 1);
                break;
            case SyncControl.KindSemaphore:
                Interlocked.Increment(ref state);
                break;
        }

        Signal();
    }

    private static long Deadline(TimeSpan? timeout)
    {
        if (timeout is not { } t || t == Timeout.InfiniteTimeSpan)
        {
            return long.MaxValue;
        }

        return Environment.TickCount64 + (long)Math.Ceiling(t.TotalMilliseconds);
    }

    /// <summary>How long the next sleep may be: a slice, less near the deadline; zero once it passed.</summary>
    private static TimeSpan? Slice(long deadline)
    {
        if (deadline == long.MaxValue)
        {
            return s_slice;
        }

        long left = deadline - Environment.TickCount64;
        return left <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(left, (long)s_slice.TotalMilliseconds));
    }

    /// <summary>Validates a timeout as the BCL does: -1 ms (infinite) or from 0 to int.MaxValue ms.</summary>
    public static TimeSpan? CheckTimeout(TimeSpan timeout, string paramName)
    {
        long ms = (long)timeout.TotalMilliseconds;
        if (ms < -1 || ms > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(paramName, timeout, "The timeout must be -1 ms (infinite) or from 0 to int.MaxValue milliseconds.");
        }

        return ms == -1 ? null : timeout;
    }

    public void ThrowIfDisposed()
    {
        if (IsDisposed || _segment.IsDetached)
        {
            throw new ObjectDisposedException(SyncLayout.KindName(Kind), $"The {SyncLayout.KindName(Kind)} '{Name}' (or its segment) was disposed.");
        }
    }

    public void Dispose() => Volatile.Write(ref _disposed, 1);
}
