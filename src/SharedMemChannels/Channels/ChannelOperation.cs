using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using SharedMemChannels.Common;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Channels;

/// <summary>
/// A pending asynchronous read, write or wait on a channel: a pooled <see cref="IValueTaskSource"/>
/// that retries its operation each time the channel's event count moves, sleeping in between on the
/// process's waiter thread (no thread of its own, no allocation once pooled).
/// </summary>
/// <remarks>
/// Why not an <c>async</c> method on a pooling builder: a pooled state machine is returned to its pool
/// by <c>GetResult</c> even when that call fails because the operation is still pending, and the
/// channel contract (a ValueTask may be consumed once; <c>GetResult</c> before completion throws) must
/// hold without corrupting the pool. These sources check their state first.
/// </remarks>
internal abstract class ChannelOperation<T>
    where T : unmanaged
{
    private static readonly TimeSpan s_livenessSlice = TimeSpan.FromMilliseconds(500);

    private readonly Action _onWake;
    private ConfiguredValueTaskAwaitable<bool>.ConfiguredValueTaskAwaiter _wait;

    protected ChannelOperation(ChannelCore<T> channel)
    {
        Channel = channel;
        _onWake = OnWake;
    }

    protected ChannelCore<T> Channel { get; }

    protected CancellationToken CancellationToken { get; private set; }

    /// <summary>Whether the operation waits for data (readers' event) or for space (writers' event).</summary>
    protected abstract bool WaitsForData { get; }

    /// <summary>Tries to finish: true when the result (or exception) has been set.</summary>
    protected abstract bool TryFinish();

    protected abstract void SetException(Exception error);

    /// <summary>Runs the operation: spin as the options say, then alternate tries and sleeps until it finishes.</summary>
    protected void Run(CancellationToken cancellationToken)
    {
        CancellationToken = cancellationToken;
        ChannelCore<T> channel = Channel;
        if (WaitsForData)
        {
            channel.SpinUntil(static c => c.Count > 0 || c.IsCompleted);
        }
        else
        {
            channel.SpinUntil(static c => c.HasSpace || c.IsCompleted);
        }

        Step();
    }

    /// <summary>
    /// Re-checks after "ready, but the try failed" before the operation sleeps anyway: the ring can look
    /// ready (a count above zero) while its next cell is still being published by a live peer that was
    /// descheduled or stopped between its claim and its publish, or when an index is garbage. Without
    /// the bound the operation would spin on the calling (or waiter) thread for as long as that lasts,
    /// deaf to its cancellation; with it, it sleeps on the event count, which the publish signals.
    /// </summary>
    private const int ReadyRetries = 3;

    private void Step()
    {
        try
        {
            ChannelCore<T> channel = Channel;
            EventCount events = WaitsForData ? channel.Header.ReadersEvent : channel.Header.WritersEvent;
            int retries = 0;
            while (true)
            {
                if (TryFinish())
                {
                    return;
                }

                CancellationToken.ThrowIfCancellationRequested();

                // Announce, re-check, then sleep: a change published between the check and the sleep
                // moves the sequence, and the wait then returns at once (the event count's protocol).
                int token = events.PrepareWait();
                if (Ready(channel) && retries++ < ReadyRetries)
                {
                    events.CancelWait();
                    continue;
                }

                retries = 0;
                ValueTask<bool> wait = events.WaitAsync(token, s_livenessSlice, runContinuationsAsynchronously: false, CancellationToken);
                _wait = wait.ConfigureAwait(false).GetAwaiter();
                if (!_wait.IsCompleted)
                {
                    // Resumes on the waiter thread: a retry is short, and the result's continuation is
                    // then queued as the channel's options say.
                    _wait.UnsafeOnCompleted(_onWake);
                    return;
                }

                if (AfterWake())
                {
                    return;
                }
            }
        }
        catch (Exception e)
        {
            SetException(e);
        }
    }

    private bool Ready(ChannelCore<T> channel) =>
        channel.IsCompleted || (WaitsForData ? channel.Count > 0 : channel.HasSpace);

    private void OnWake()
    {
        try
        {
            if (AfterWake())
            {
                return;
            }
        }
        catch (Exception e)
        {
            SetException(e);
            return;
        }

        Step();
    }

    /// <summary>
    /// Consumes the wait's outcome: canceled throws. A timed-out slice (nobody signalled) tries the
    /// operation once more before it looks whether the peers still live: a writer that died holding a
    /// claim signals nobody, and the items behind its cell become readable only once a reader steps
    /// over the cell, so "every writer is dead" must not be reported while such items are there.
    /// True when that try finished the operation.
    /// </summary>
    private bool AfterWake()
    {
        if (!_wait.GetResult())
        {
            if (TryFinish())
            {
                return true;
            }

            Channel.ThrowIfAbandoned(WaitsForData);
        }

        Channel.ThrowIfDetached();
        return false;
    }
}

/// <summary>A pending <c>ReadAsync</c>.</summary>
internal sealed class ReadOperation<T>(ChannelCore<T> channel) : ChannelOperation<T>(channel), IValueTaskSource<T>
    where T : unmanaged
{
    private ManualResetValueTaskSourceCore<T> _core;
    private int _continuation; // SingleContinuation's flag

    protected override bool WaitsForData => true;

    public ValueTask<T> Start(CancellationToken cancellationToken)
    {
        _core.RunContinuationsAsynchronously = !Channel.Options.AllowSynchronousContinuations;
        var task = new ValueTask<T>(this, _core.Version);
        Run(cancellationToken);
        return task;
    }

    protected override bool TryFinish()
    {
        if (Channel.TryRead(out T item))
        {
            _core.SetResult(item);
            return true;
        }

        if (Channel.IsCompleted && Channel.Count == 0)
        {
            _core.SetException(Channel.ClosedException());
            return true;
        }

        return false;
    }

    protected override void SetException(Exception error) => _core.SetException(error);

    public T GetResult(short token)
    {
        ChannelPool.ThrowIfPending(_core.GetStatus(token));
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            _continuation = 0;
            Channel.ReturnRead(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        SingleContinuation.Claim(ref _continuation, token, _core.Version);
        _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>A pending <c>WaitToReadAsync</c> or <c>WaitToWriteAsync</c>.</summary>
internal sealed class WaitOperation<T>(ChannelCore<T> channel, bool forData) : ChannelOperation<T>(channel), IValueTaskSource<bool>
    where T : unmanaged
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private int _continuation; // SingleContinuation's flag

    protected override bool WaitsForData => forData;

    public ValueTask<bool> Start(CancellationToken cancellationToken)
    {
        _core.RunContinuationsAsynchronously = !Channel.Options.AllowSynchronousContinuations;
        var task = new ValueTask<bool>(this, _core.Version);
        Run(cancellationToken);
        return task;
    }

    protected override bool TryFinish()
    {
        if (forData ? Channel.Count > 0 : !Channel.IsCompleted && Channel.HasSpace)
        {
            _core.SetResult(true);
            return true;
        }

        if (Channel.IsCompleted && (!forData || Channel.Count == 0))
        {
            // The BCL's rule: false after Complete(), the completion's own error after Complete(ex).
            if (Channel.CompletionError() is { } error)
            {
                _core.SetException(error);
            }
            else
            {
                _core.SetResult(false);
            }

            return true;
        }

        return false;
    }

    protected override void SetException(Exception error) => _core.SetException(error);

    public bool GetResult(short token)
    {
        ChannelPool.ThrowIfPending(_core.GetStatus(token));
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            _continuation = 0;
            Channel.ReturnWait(this, forData);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        SingleContinuation.Claim(ref _continuation, token, _core.Version);
        _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>A pending <c>WriteAsync</c> on a full channel (Wait mode).</summary>
internal sealed class WriteOperation<T>(ChannelCore<T> channel) : ChannelOperation<T>(channel), IValueTaskSource
    where T : unmanaged
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private int _continuation; // SingleContinuation's flag
    private T _item;

    protected override bool WaitsForData => false;

    public ValueTask Start(T item, CancellationToken cancellationToken)
    {
        // A blocked writer's continuation always runs asynchronously, as the BCL's does.
        _core.RunContinuationsAsynchronously = true;
        _item = item;
        var task = new ValueTask(this, _core.Version);
        Run(cancellationToken);
        return task;
    }

    protected override bool TryFinish()
    {
        if (Channel.IsCompleted)
        {
            _core.SetException(Channel.ClosedException());
            return true;
        }

        if (Channel.TryWrite(_item))
        {
            _core.SetResult(true);
            return true;
        }

        return false;
    }

    protected override void SetException(Exception error) => _core.SetException(error);

    public void GetResult(short token)
    {
        ChannelPool.ThrowIfPending(_core.GetStatus(token));
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            _continuation = 0;
            _item = default;
            Channel.ReturnWrite(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        SingleContinuation.Claim(ref _continuation, token, _core.Version);
        _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>What the operations share.</summary>
internal static class ChannelPool
{
    /// <summary>The most pooled operations of each kind a channel keeps.</summary>
    public const int Capacity = 64;

    /// <summary>The ValueTask contract: a pending operation's result cannot be taken (and the source is not consumed).</summary>
    public static void ThrowIfPending(ValueTaskSourceStatus status)
    {
        if (status == ValueTaskSourceStatus.Pending)
        {
            Common.ThrowHelper.ThrowInvalidOperation("The operation has not completed yet: await it instead of reading its result.");
        }
    }
}
