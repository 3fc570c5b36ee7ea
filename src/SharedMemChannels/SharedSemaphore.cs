using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// A named counting semaphore in a segment, shared by processes, with the surface of
/// <see cref="SemaphoreSlim"/>: <see cref="Wait()"/> takes one unit (waiting while there is none),
/// <see cref="Release(int)"/> returns units, up to the maximum it was made with.
/// </summary>
/// <remarks>
/// Waiting spins a little, then sleeps in the kernel; an asynchronous wait is served by the process's
/// waiter thread, so no thread blocks per pending wait. As with any counting semaphore, units taken by
/// a process that dies are not given back for it: the count is not an ownership record.
/// </remarks>
public sealed class SharedSemaphore : IDisposable
{
    private static readonly Func<SyncCore, bool, TakeResult> s_take = Take;
    private readonly SyncCore _core;

    private SharedSemaphore(SyncCore core) => _core = core;

    /// <summary>The semaphore's name in its segment.</summary>
    public string Name => _core.Name;

    /// <summary>The most units the semaphore holds (as stored with it).</summary>
    public int MaximumCount => _core.Control.Maximum;

    /// <summary>The units available now.</summary>
    public int CurrentCount
    {
        get
        {
            _core.ThrowIfDisposed();
            _core.CheckIdentity();
            return Volatile.Read(ref _core.State);
        }
    }

    /// <summary>Creates the semaphore <paramref name="name"/> in <paramref name="segment"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-'.</param>
    /// <param name="initialCount">The units available at first, from 0 to <paramref name="maximumCount"/>.</param>
    /// <param name="maximumCount">The most units it holds, at least 1.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    public static SharedSemaphore Create(SharedSegment segment, string name, int initialCount, int maximumCount = int.MaxValue) =>
        new(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(initialCount, maximumCount), SyncCore.OpenMode.Create));

    /// <summary>Opens the existing semaphore <paramref name="name"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="KeyNotFoundException">There is no such object.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedSemaphore Open(SharedSegment segment, string name) =>
        new(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(0, 1), SyncCore.OpenMode.Open));

    /// <summary>Opens the semaphore <paramref name="name"/>, or creates it: exactly one process creates.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <param name="initialCount">The units available at first, when created here.</param>
    /// <param name="maximumCount">The most units it holds; checked against an existing semaphore.</param>
    /// <exception cref="ArgumentException">The existing semaphore has another maximum.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedSemaphore OpenOrCreate(SharedSegment segment, string name, int initialCount, int maximumCount = int.MaxValue)
    {
        var made = new SharedSemaphore(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(initialCount, maximumCount), SyncCore.OpenMode.OpenOrCreate));
        if (made.MaximumCount != maximumCount)
        {
            int existing = made.MaximumCount;
            made.Dispose();
            throw new ArgumentException($"Semaphore '{name}' exists with maximum count {existing}.", nameof(maximumCount));
        }

        return made;
    }

    /// <summary>Takes a unit, waiting as long as it takes.</summary>
    public void Wait() => Wait(Timeout.InfiniteTimeSpan, CancellationToken.None);

    /// <summary>Takes a unit, waiting until one is available or the wait is canceled.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public void Wait(CancellationToken cancellationToken) => Wait(Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Takes a unit within <paramref name="timeout"/>; false when none became available.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit, zero to try once.</param>
    public bool Wait(TimeSpan timeout) => Wait(timeout, CancellationToken.None);

    /// <summary>Takes a unit within <paramref name="timeout"/> unless canceled; false when none became available.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit, zero to try once.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken) =>
        _core.Wait(s_take, SyncCore.CheckTimeout(timeout, nameof(timeout)), cancellationToken) == TakeResult.Taken;

    /// <summary>As <see cref="WaitAsync(CancellationToken)"/>, without cancellation.</summary>
    public ValueTask WaitAsync() => WaitAsync(CancellationToken.None);

    /// <summary>Takes a unit asynchronously (no thread blocks while it waits).</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public async ValueTask WaitAsync(CancellationToken cancellationToken) =>
        await _core.WaitAsync(s_take, null, cancellationToken).ConfigureAwait(false);

    /// <summary>As <see cref="WaitAsync(TimeSpan, CancellationToken)"/>, without cancellation.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    public ValueTask<bool> WaitAsync(TimeSpan timeout) => WaitAsync(timeout, CancellationToken.None);

    /// <summary>Takes a unit asynchronously within <paramref name="timeout"/>; false when none became available.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public async ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        TimeSpan? limit = SyncCore.CheckTimeout(timeout, nameof(timeout));
        return await _core.WaitAsync(s_take, limit, cancellationToken).ConfigureAwait(false) == TakeResult.Taken;
    }

    /// <summary>Returns one unit; returns the count before.</summary>
    /// <exception cref="SemaphoreFullException">The semaphore holds its maximum already.</exception>
    public int Release() => Release(1);

    /// <summary>Returns <paramref name="releaseCount"/> units; returns the count before.</summary>
    /// <param name="releaseCount">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="releaseCount"/> is less than 1.</exception>
    /// <exception cref="SemaphoreFullException">The count would exceed the maximum (nothing is released).</exception>
    public int Release(int releaseCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(releaseCount, 1);
        _core.ThrowIfDisposed();
        _core.CheckIdentity();
        int maximum = _core.Control.Maximum;
        ref int state = ref _core.State;
        while (true)
        {
            int count = Volatile.Read(ref state);
            if (count < 0 || count > maximum)
            {
                Common.ThrowHelper.ThrowDamaged(_core.Segment.Name, $"semaphore '{Name}' has a count {count} outside 0..{maximum}.");
            }

            if (releaseCount > maximum - count)
            {
                throw new SemaphoreFullException($"Semaphore '{Name}' holds {count} of at most {maximum} units; {releaseCount} more do not fit.");
            }

            if (Interlocked.CompareExchange(ref state, count + releaseCount, count) == count)
            {
                _core.Signal();
                return count;
            }
        }
    }

    /// <summary>Removes the semaphore <paramref name="name"/> from <paramref name="segment"/>: its waiters fail. False when there is none.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    public static bool Remove(SharedSegment segment, string name) => SyncCore.Remove(segment, name);

    /// <summary>Lets go of this process's view of the semaphore (it stays in the segment).</summary>
    public void Dispose() => _core.Dispose();

    private static SyncControl Initial(int initialCount, int maximumCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maximumCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(initialCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(initialCount, maximumCount);
        return new SyncControl
        {
            Magic = SyncControl.MagicValue,
            Version = SyncControl.CurrentVersion,
            Kind = SyncControl.KindSemaphore,
            Maximum = maximumCount,
            CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            State = initialCount,
        };
    }

    private static TakeResult Take(SyncCore core, bool afterSlice)
    {
        ref int state = ref core.State;
        int maximum = core.Control.Maximum;
        for (int attempt = 0; attempt < 64; attempt++)
        {
            int count = Volatile.Read(ref state);
            if (count <= 0 || count > maximum)
            {
                if (count < 0 || count > maximum)
                {
                    Common.ThrowHelper.ThrowDamaged(core.Segment.Name, $"semaphore '{core.Name}' has a count {count} outside 0..{maximum}.");
                }

                return TakeResult.NotYet;
            }

            if (Interlocked.CompareExchange(ref state, count - 1, count) == count)
            {
                return TakeResult.Taken;
            }
        }

        return TakeResult.NotYet;
    }
}
