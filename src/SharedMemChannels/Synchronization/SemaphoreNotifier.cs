using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// Wakes an <see cref="EventCount"/>'s sleepers through a kernel semaphore instead of its futex word
/// (<see cref="ChannelNotifier"/>), and serves this process's asynchronous waits on it. The waiter
/// thread's <c>futex_waitv</c> cannot wait on a semaphore, so each semaphore with pending asynchronous
/// waits in a process has one pump thread that sleeps on it and completes every wait whose event count
/// moved: a thread per semaphore (per channel side), never per pending operation; it ends when no wait is
/// pending. The event count's sequence still moves with every signal: it is what a wait checks, the
/// semaphore only what it sleeps on.
/// </summary>
internal sealed class SemaphoreNotifier : IDisposable
{
    /// <summary>The longest a pump sleeps before it looks at deadlines again.</summary>
    private static readonly TimeSpan s_pumpSlice = TimeSpan.FromMilliseconds(100);

    private static readonly List<WeakReference<SemaphoreNotifier>> s_all = [];

    private readonly object _lock = new();
    private readonly List<Pending> _pending = [];
    private Thread? _pump;
    private int _completing;
    private bool _disposed;

    public SemaphoreNotifier(NotifierSemaphore semaphore)
    {
        Semaphore = semaphore;
        lock (s_all)
        {
            s_all.RemoveAll(w => !w.TryGetTarget(out _));
            s_all.Add(new WeakReference<SemaphoreNotifier>(this));
        }
    }

    public NotifierSemaphore Semaphore { get; }

    /// <summary>Raises the semaphore for the announced sleepers.</summary>
    public void Post(int sleepers)
    {
        if (!Semaphore.IsDisposed)
        {
            Semaphore.Post(sleepers);
        }
    }

    /// <summary>As <see cref="AsyncWaiter.WaitAsync(EventCount, int, TimeSpan?, bool, CancellationToken)"/>, on this semaphore.</summary>
    public ValueTask<bool> WaitAsync(EventCount events, int token, TimeSpan? timeout, bool runContinuationsAsynchronously, CancellationToken cancellationToken)
    {
        if (events.TryCompleteAtOnce(token, timeout, cancellationToken, out ValueTask<bool> done, out long deadline))
        {
            return done;
        }

        var pending = new Pending(this, events, token, deadline, runContinuationsAsynchronously);
        lock (_lock)
        {
            if (_disposed)
            {
                events.CancelWait();
                return ValueTask.FromException<bool>(new ObjectDisposedException(nameof(SemaphoreNotifier), $"The channel's {Semaphore.Description} was closed."));
            }

            if (events.Memory.IsClosed)
            {
                // Its segment is being detached (closed before its semaphore waits are failed): never wait on it again.
                events.CancelWait();
                return ValueTask.FromException<bool>(new ObjectDisposedException(nameof(SharedSegment), $"Segment '{events.Memory.Name}' was disposed while the operation waited."));
            }

            _pending.Add(pending);
            if (_pump is null)
            {
                _pump = new Thread(Pump) { IsBackground = true, Name = "shmc semaphore waiter" };
                _pump.Start();
            }
        }

        if (cancellationToken.CanBeCanceled)
        {
            pending.Cancellation = cancellationToken.UnsafeRegister(static (state, ct) => ((Pending)state!).Owner.Cancel((Pending)state!, ct), pending);
        }

        return new ValueTask<bool>(pending.Source.Task);
    }

    private void Cancel(Pending pending, CancellationToken cancellationToken)
    {
        if (Detach(pending))
        {
            pending.Events.CancelWait();
            pending.Source.TrySetCanceled(cancellationToken);
        }
    }

    private bool Detach(Pending pending)
    {
        lock (_lock)
        {
            return _pending.Remove(pending);
        }
    }

    private void Pump()
    {
        try
        {
            PumpLoop();
        }
        catch (Exception e)
        {
            // Never let a pump's failure end the process: what waits on it fails instead.
            FailAll(e);
        }
    }

    private void PumpLoop()
    {
        var due = new List<(Pending Pending, bool Result)>();
        while (true)
        {
            long wait;
            lock (_lock)
            {
                long now = Environment.TickCount64;
                long nearest = long.MaxValue;
                for (int i = _pending.Count - 1; i >= 0; i--)
                {
                    Pending p = _pending[i];
                    if (Volatile.Read(ref p.Events.Sequence) != p.Token)
                    {
                        due.Add((p, true));
                        _pending.RemoveAt(i);
                    }
                    else if (p.Deadline <= now)
                    {
                        due.Add((p, false));
                        _pending.RemoveAt(i);
                    }
                    else
                    {
                        nearest = Math.Min(nearest, p.Deadline);
                    }
                }

                if (due.Count == 0 && (_pending.Count == 0 || _disposed))
                {
                    _pump = null;
                    return;
                }

                _completing += due.Count;
                wait = nearest == long.MaxValue ? (long)s_pumpSlice.TotalMilliseconds : Math.Clamp(nearest - now, 1, (long)s_pumpSlice.TotalMilliseconds);
            }

            foreach ((Pending p, bool result) in due)
            {
                try
                {
                    p.Cancellation.Dispose();
                    p.Events.CancelWait();
                    p.Source.TrySetResult(result);
                }
                finally
                {
                    Interlocked.Decrement(ref _completing);
                }
            }

            bool hadDue = due.Count > 0;
            due.Clear();
            if (hadDue)
            {
                continue; // look again before sleeping: completions may have registered new waits
            }

            try
            {
                Semaphore.Wait(TimeSpan.FromMilliseconds(wait));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // The semaphore went (its channel was destroyed): fail what waits on it.
                FailAll(e);
                return;
            }
        }
    }

    private void FailAll(Exception error)
    {
        List<Pending> failed;
        lock (_lock)
        {
            failed = [.. _pending];
            _pending.Clear();
            _pump = null;
        }

        foreach (Pending p in failed)
        {
            p.Cancellation.Dispose();
            p.Events.CancelWait();
            p.Source.TrySetException(error);
        }
    }

    /// <summary>
    /// Fails every pending wait on words of <paramref name="memory"/> in this process, before the mapping
    /// goes, and waits until no completion of this notifier is still running (it may touch the mapping).
    /// </summary>
    public static void FailWaits(SegmentMemory memory, Exception error)
    {
        List<SemaphoreNotifier> notifiers = [];
        lock (s_all)
        {
            foreach (WeakReference<SemaphoreNotifier> w in s_all)
            {
                if (w.TryGetTarget(out SemaphoreNotifier? n))
                {
                    notifiers.Add(n);
                }
            }
        }

        foreach (SemaphoreNotifier n in notifiers)
        {
            n.FailWaitsOn(memory, error);
        }
    }

    private void FailWaitsOn(SegmentMemory memory, Exception error)
    {
        List<Pending> failed = [];
        lock (_lock)
        {
            for (int i = _pending.Count - 1; i >= 0; i--)
            {
                if (ReferenceEquals(_pending[i].Events.Memory, memory))
                {
                    failed.Add(_pending[i]);
                    _pending.RemoveAt(i);
                }
            }
        }

        foreach (Pending p in failed)
        {
            p.Cancellation.Dispose();
            p.Events.CancelWait();
            p.Source.TrySetException(error);
        }

        // A completion the pump already took out may be touching the mapping: let it finish (unless we are it).
        if (Thread.CurrentThread != _pump)
        {
            var spinner = default(SpinWait);
            while (Volatile.Read(ref _completing) != 0)
            {
                spinner.SpinOnce();
            }
        }
    }

    /// <summary>
    /// Closes the semaphore once the pump is off it (a pump asleep on a closed POSIX semaphore would touch
    /// freed memory): pending waits fail, the pump is woken and joined; if it does not end in time the
    /// semaphore is left open rather than closed under it.
    /// </summary>
    public void Dispose()
    {
        Thread? pump;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            pump = _pump;
        }

        FailAll(new ObjectDisposedException(nameof(SemaphoreNotifier), $"The channel's {Semaphore.Description} was closed while the operation waited."));
        if (pump is not null && pump != Thread.CurrentThread)
        {
            Semaphore.Post(1);
            if (!pump.Join(TimeSpan.FromSeconds(5)))
            {
                return;
            }
        }

        Semaphore.Dispose();
    }

    private sealed class Pending(SemaphoreNotifier owner, EventCount events, int token, long deadline, bool runContinuationsAsynchronously)
    {
        public SemaphoreNotifier Owner { get; } = owner;

        public EventCount Events { get; } = events;

        public int Token { get; } = token;

        public long Deadline { get; } = deadline;

        public TaskCompletionSource<bool> Source { get; } = new(runContinuationsAsynchronously ? TaskCreationOptions.RunContinuationsAsynchronously : TaskCreationOptions.None);

        public CancellationTokenRegistration Cancellation { get; set; }
    }
}
