using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// What <see cref="SharedMutex"/>, <see cref="SharedEvent"/> and <see cref="SharedSemaphore"/> share: a
/// name in a segment's directory, and waits with timeouts and cancellation, synchronous (a futex sleep)
/// or asynchronous (served by the process's waiter thread: no thread blocks per pending wait).
/// </summary>
public abstract class SharedSyncObject : IDisposable
{
    private protected SharedSyncObject(SyncCore core) => Core = core;

    /// <summary>The object's name in its segment.</summary>
    public string Name => Core.Name;

    private protected SyncCore Core { get; }

    /// <summary>Waits as long as it takes (takes the mutex, passes the event, takes a semaphore unit).</summary>
    public void Wait() => Wait(Timeout.InfiniteTimeSpan, CancellationToken.None);

    /// <summary>Waits as long as it takes or until canceled.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public void Wait(CancellationToken cancellationToken) => Wait(Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits at most <paramref name="timeout"/>; false when the object was not available in time.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit, zero to try once.</param>
    public bool Wait(TimeSpan timeout) => Wait(timeout, CancellationToken.None);

    /// <summary>Waits at most <paramref name="timeout"/> unless canceled; false when the object was not available in time.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit, zero to try once.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than -1 ms) or too long.</exception>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken) =>
        Finish(Core.Wait(TakeStep, SyncCore.CheckTimeout(timeout, nameof(timeout)), cancellationToken));

    /// <summary>As <see cref="WaitAsync(CancellationToken)"/>, without cancellation.</summary>
    public ValueTask WaitAsync() => WaitAsync(CancellationToken.None);

    /// <summary>Waits asynchronously as long as it takes (no thread blocks while it waits).</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public async ValueTask WaitAsync(CancellationToken cancellationToken) =>
        Finish(await Core.WaitAsync(TakeStep, null, cancellationToken).ConfigureAwait(false));

    /// <summary>As <see cref="WaitAsync(TimeSpan, CancellationToken)"/>, without cancellation.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    public ValueTask<bool> WaitAsync(TimeSpan timeout) => WaitAsync(timeout, CancellationToken.None);

    /// <summary>Waits asynchronously at most <paramref name="timeout"/>; false when the object was not available in time.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than -1 ms) or too long.</exception>
    /// <exception cref="OperationCanceledException">The wait was canceled (nothing is taken).</exception>
    public async ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        TimeSpan? limit = SyncCore.CheckTimeout(timeout, nameof(timeout));
        return Finish(await Core.WaitAsync(TakeStep, limit, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Lets go of this process's view of the object (it stays in the segment; a held mutex is not released).</summary>
    public void Dispose()
    {
        Core.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The one step that tries to take the object (called with true after a sleep slice with no change).</summary>
    private protected abstract Func<SyncCore, bool, TakeResult> TakeStep { get; }

    /// <summary>What a finished wait returns (a mutex throws <see cref="AbandonedMutexException"/> for an abandoned one).</summary>
    private protected virtual bool Finish(TakeResult result) => result == TakeResult.Taken;
}
