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
    /// Completes when no message will come any more: faulted with <see cref="ChannelRemovedException"/> once
    /// the topic was removed and this subscriber read what was buffered; canceled when the subscriber is
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
                if (CompleteIfRemovedAndDrained())
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

    /// <summary>Faults the completion once the topic is removed and nothing is left to read; true if so.</summary>
    private bool CompleteIfRemovedAndDrained()
    {
        if (_core.IsRemoved && _core.Pending(_row) == 0)
        {
            _completion.TrySetException(new ChannelRemovedException($"Topic '{_core.Name}' was removed."));
            return true;
        }

        return false;
    }

    public bool TryReceive(Span<byte> destination, out TopicMessageInfo info)
    {
        ThrowIfDisposed();
        return _core.TryReceive(_row, destination, out info);
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
    /// <see cref="ChannelAbandonedException"/>, a removed topic drained is <see cref="ChannelRemovedException"/>.
    /// </summary>
    public bool Wait(TimeSpan timeout)
    {
        ThrowIfDisposed();
        using Segments.SegmentAttachment.BlockingUse use = _core.Segment.EnterBlocking();
        using TopicCore.Hold hold = _core.HoldWhileWaiting();
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        if (SpinForMessage())
        {
            return true;
        }

        while (true)
        {
            if (AnnounceOrReady(out int token))
            {
                return true;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                _core.MessageEvent.CancelWait();
                return false;
            }

            bool woken = _core.MessageEvent.Wait(token, TimeSpan.FromMilliseconds(Math.Min(left, (long)s_slice.TotalMilliseconds)));
            ThrowIfDisposed(); // before the mapping is touched again: a detach waits for this wait to leave
            ThrowIfAbandoned(woken);
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
        if (AnnounceOrReady(out int token))
        {
            return true;
        }

        while (true)
        {
            bool woken = await _core.MessageEvent.WaitAsync(token, s_slice, cancellationToken).ConfigureAwait(false);
            if (AfterWake(woken, out token))
            {
                return true;
            }
        }
    }

    /// <summary>
    /// What an asynchronous wait does when it resumes (on a pool thread): inside a blocking use of the
    /// segment, so that a detach on another thread waits for these few reads instead of unmapping under them.
    /// </summary>
    private bool AfterWake(bool woken, out int token)
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
    /// Announces a sleeper on the message event count and looks once more: true (announcement withdrawn)
    /// when a message is there; <see cref="ChannelRemovedException"/> when the topic is removed and drained;
    /// else false with the token to sleep on.
    /// </summary>
    private bool AnnounceOrReady(out int token)
    {
        token = _core.MessageEvent.PrepareWait();
        if (_core.Pending(_row) > 0)
        {
            _core.MessageEvent.CancelWait();
            return true;
        }

        if (CompleteIfRemovedAndDrained())
        {
            _core.MessageEvent.CancelWait();
            throw new ChannelRemovedException($"Topic '{_core.Name}' was removed.");
        }

        return false;
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
