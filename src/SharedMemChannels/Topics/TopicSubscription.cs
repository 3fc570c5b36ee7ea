using System.Threading.Channels;

namespace SharedMemChannels.Topics;

/// <summary>What the subscriber views share: the row, the receive, and the wait for the next message.</summary>
internal sealed class TopicSubscription : IDisposable
{
    /// <summary>How long a wait sleeps before it looks whether the publisher still lives.</summary>
    private static readonly TimeSpan s_slice = TimeSpan.FromMilliseconds(500);

    private readonly TopicCore _core;
    private readonly int _row;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    public TopicSubscription(TopicCore core, int row)
    {
        _core = core;
        _row = row;
        _scratch = new byte[core.BufferSize];
    }

    private byte[] _scratch;

    /// <summary>A buffer of the topic's message size (made again when the topic's buffers grew), reused by the convenience reads.</summary>
    public byte[] Scratch => _scratch.Length >= _core.BufferSize ? _scratch : (_scratch = new byte[_core.BufferSize]);

    /// <summary>
    /// Receives the next message into <see cref="Scratch"/>, which is returned: the publisher may grow the
    /// buffers between the scratch's sizing and the copy, and then the copy is made again into a larger one.
    /// </summary>
    public bool TryReceiveScratch(out byte[] buffer, out TopicMessageInfo info)
    {
        while (true)
        {
            buffer = Scratch;
            try
            {
                return TryReceive(buffer, out info);
            }
            catch (ArgumentException) when (buffer.Length < _core.BufferSize)
            {
                // Grown meanwhile (the message is left to be read again): a larger scratch, and again.
            }
        }
    }

    public long Drops => Volatile.Read(ref _core.Row(_row).Drops);

    public int Count
    {
        get
        {
            ThrowIfDisposed();
            return (int)_core.Pending(_row);
        }
    }

    /// <summary>
    /// Completes when no message will come any more, once this subscriber read what was buffered: as the
    /// publisher completed the topic (with success, its error, or canceled), or faulted with
    /// <see cref="ChannelRemovedException"/> when the topic was removed; canceled when the subscriber is
    /// disposed. A dead publisher does not complete it (a new one may take over). Watched, once asked for,
    /// by a wait on the waiter thread, not a thread of its own.
    /// </summary>
    public Task Completion
    {
        get
        {
            if (Interlocked.Exchange(ref _watching, 1) == 0 && Volatile.Read(ref _disposed) == 0)
            {
                _ = WatchCompletionAsync();
            }

            return _completion.Task;
        }
    }

    private int _watching;
    private readonly CancellationTokenSource _disposal = new();

    private async Task WatchCompletionAsync()
    {
        try
        {
            // Held while it sleeps on the topic's words; resumed inline: on the waiter thread inside its
            // completion pass (a detaching segment waits for that pass before it unmaps, so the checks below
            // never read unmapped memory), or on the disposing thread inside Dispose's cancellation, which
            // lets go of this hold before the subscription's own: the topic goes with the subscription.
            using TopicCore.Hold hold = _core.HoldWhileWaiting();
            while (Volatile.Read(ref _disposed) == 0 && !_core.Segment.IsDetached)
            {
                int token = _core.MessageEvent.PrepareWait();
                if (CompleteIfEnded())
                {
                    _core.MessageEvent.CancelWait();
                    return;
                }

                await _core.MessageEvent.WaitAsync(token, s_slice, runContinuationsAsynchronously: false, _disposal.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed: the completion is canceled by Dispose.
        }
        catch (Exception e) when (e is InvalidSegmentException or ObjectDisposedException)
        {
            _completion.TrySetException(e);
        }
    }

    /// <summary>
    /// Whether no message will come any more and nothing is left to read (the topic completed by its
    /// publisher, or removed); completes <see cref="Completion"/> as the ending says, and returns true if so.
    /// </summary>
    private bool CompleteIfEnded()
    {
        if (!(_core.IsCompletionFinal || _core.IsRemoved) || _core.Pending(_row) != 0)
        {
            return false;
        }

        switch (EndError())
        {
            case null:
                _completion.TrySetResult();
                break;
            case OperationCanceledException canceled:
                _completion.TrySetCanceled(canceled.CancellationToken);
                break;
            case Exception error:
                _completion.TrySetException(error);
                break;
        }

        return true;
    }

    /// <summary>The error an ended topic reports (null for a plain <c>Complete()</c>): the publisher's, or the removal.</summary>
    private Exception? EndError() =>
        _core.IsCompletionFinal ? _core.CompletionError() : new ChannelRemovedException($"Topic '{_core.Name}' was removed.");

    /// <summary>What a blocking receive of an ended topic throws: the removal, the cancellation, or a <see cref="ChannelClosedException"/>.</summary>
    private Exception EndException() =>
        _core.IsCompletionFinal ? _core.ClosedException() : new ChannelRemovedException($"Topic '{_core.Name}' was removed.");

    public bool TryReceive(Span<byte> destination, out TopicMessageInfo info)
    {
        ThrowIfDisposed();
        return _core.TryReceive(_row, destination, out info);
    }

    public ReceiveOutcome TryReceive<TSink>(ref TSink sink, out TopicMessageInfo info, out int size)
        where TSink : IMessageSink, allows ref struct
    {
        ThrowIfDisposed();
        return _core.TryReceive(_row, ref sink, out info, out size);
    }

    public bool TryBorrow(out TopicMessage message)
    {
        ThrowIfDisposed();
        if (!_core.TryBorrow(_row, out long payload, out long version, out TopicMessageInfo info))
        {
            message = default;
            return false;
        }

        message = new TopicMessage(_core, _row, payload, version, info);
        return true;
    }

    /// <summary>
    /// Blocks this thread (spin, then the kernel: the futex word or the semaphore) until a message is there;
    /// false when <paramref name="timeout"/> passed first. A dead publisher with nothing left to read is
    /// <see cref="ChannelAbandonedException"/>; a topic completed (or removed) and drained throws what
    /// <see cref="EndException"/> says; <paramref name="cancellationToken"/> wakes the sleep and throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        using Segments.SegmentAttachment.BlockingUse use = _core.Segment.EnterBlocking();
        using TopicCore.Hold hold = _core.HoldWhileWaiting();
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        if (SpinForMessage())
        {
            return true;
        }

        // A cancellation wakes the sleepers of the message event (a futex wake, or posts for the announced
        // sleepers of a semaphore; others look and sleep again); registered inside the blocking use, so the
        // callback never touches an unmapped word: disposing the registration waits for a running one.
        using CancellationTokenRegistration registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static events => WakeSleepers((Synchronization.EventCount)events!), _core.MessageEvent)
            : default;
        while (true)
        {
            switch (AnnounceOrReady(out int token))
            {
                case WaitStep.Ready:
                    return true;
                case WaitStep.Ended:
                    throw EndException();
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0 || cancellationToken.IsCancellationRequested)
            {
                _core.MessageEvent.CancelWait();
                cancellationToken.ThrowIfCancellationRequested();
                return false;
            }

            bool woken = _core.MessageEvent.Wait(token, TimeSpan.FromMilliseconds(Math.Min(left, (long)s_slice.TotalMilliseconds)));
            ThrowIfDisposed(); // before the mapping is touched again: a detach waits for this wait to leave
            cancellationToken.ThrowIfCancellationRequested();
            ThrowIfAbandoned(woken);
        }
    }

    private static void WakeSleepers(Synchronization.EventCount events)
    {
        if (events.Notifier is { } notifier)
        {
            notifier.Post(events.Waiters);
        }
        else
        {
            events.WakeAll();
        }
    }

    /// <summary>True once a message is there; after a slice with none and a dead publisher, <see cref="ChannelAbandonedException"/>.</summary>
    public async ValueTask<bool> WaitAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (SpinForMessage())
        {
            return true; // the common case of a busy topic: no sleep, no allocation
        }

        using TopicCore.Hold hold = _core.HoldWhileWaiting();
        WaitStep step = AnnounceOrReady(out int token);
        while (step == WaitStep.Sleep)
        {
            bool woken = await _core.MessageEvent.WaitAsync(token, s_slice, cancellationToken).ConfigureAwait(false);
            step = AfterWake(woken, out token);
        }

        if (step == WaitStep.Ready)
        {
            return true;
        }

        // Ended: false for a plain completion (a channel's WaitToReadAsync), else its error.
        Exception? error = EndError();
        return error is null ? false : throw error;
    }

    /// <summary>
    /// What an asynchronous wait does when it resumes (on a pool thread): inside a blocking use of the
    /// segment, so that a detach on another thread waits for these few reads instead of unmapping under them.
    /// </summary>
    private WaitStep AfterWake(bool woken, out int token)
    {
        using Segments.SegmentAttachment.BlockingUse use = _core.Segment.EnterBlocking();
        ThrowIfDisposed();
        ThrowIfAbandoned(woken);
        return AnnounceOrReady(out token);
    }

    /// <summary>A short busy spin before any sleep (subscribers of a busy topic find the next message here, without yielding the CPU to the other processes of a fan-out); true when one is there.</summary>
    private bool SpinForMessage()
    {
        var spinner = default(SpinWait);
        for (int i = 0; i < TopicCore.SpinRounds; i++)
        {
            if (_core.Pending(_row) > 0)
            {
                return true;
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }

        return false;
    }

    /// <summary>
    /// Announces a sleeper on the message event count and looks once more: <see cref="WaitStep.Ready"/>
    /// (announcement withdrawn) when a message is there, <see cref="WaitStep.Ended"/> (withdrawn) when the
    /// topic is completed or removed and drained, else <see cref="WaitStep.Sleep"/> with the token.
    /// </summary>
    private WaitStep AnnounceOrReady(out int token)
    {
        token = _core.MessageEvent.PrepareWait();
        if (_core.Pending(_row) > 0)
        {
            _core.MessageEvent.CancelWait();
            return WaitStep.Ready;
        }

        if (CompleteIfEnded())
        {
            _core.MessageEvent.CancelWait();
            return WaitStep.Ended;
        }

        return WaitStep.Sleep;
    }

    private enum WaitStep
    {
        Sleep,
        Ready,
        Ended,
    }

    /// <summary>After a sleep that nothing ended (a whole slice), with nothing to read and the publisher's process dead: <see cref="ChannelAbandonedException"/>.</summary>
    private void ThrowIfAbandoned(bool woken)
    {
        if (!woken && _core.Pending(_row) == 0 && Volatile.Read(ref _core.Control.PublisherLease) != 0 && !_core.IsPublisherAlive)
        {
            throw new ChannelAbandonedException($"The publisher of topic '{_core.Name}' died. A new publisher may take over; wait again to go on.");
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            if (!_core.Segment.IsDetached)
            {
                _core.RemoveSubscriber(_row);
            }

            _disposal.Cancel();
            _disposal.Dispose();
            _completion.TrySetCanceled();
            _core.ReleaseHolder();
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || _core.Segment.IsDetached, this);
}
