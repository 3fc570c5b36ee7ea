using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// A <see cref="SharedChannel{T}"/> of unmanaged items: the ring carries them as they are. Its reader and
/// writer are sealed and call <see cref="ChannelCore{T}"/> directly (the hot path has no other dispatch).
/// </summary>
internal sealed class UnmanagedChannelBackend<T> : SharedChannelBackend<T>
    where T : unmanaged
{
    public UnmanagedChannelBackend(ChannelCore<T> core)
    {
        Core = core;
        Reader = new UnmanagedChannelReader<T>(core);
        Writer = new UnmanagedChannelWriter<T>(core);
    }

    public ChannelCore<T> Core { get; }

    public override string Name => Core.Name;

    public override SharedChannelOptions Options => Core.Options;

    public override ChannelReader<T> Reader { get; }

    public override ChannelWriter<T> Writer { get; }

    public override string? ComparerIdentity => Core.ComparerIdentity;

    public override void Detach() => Core.Detach();

    public override void Release(in T item)
    {
        using SegmentAttachment.Use use = Core.Segment.EnterUse();
        (Core.Ownership as OwnedFieldsOwnership<T>)?.Release(in item, requireOwner: true);
    }
}

/// <summary>The reading end of a channel of unmanaged items.</summary>
internal sealed class UnmanagedChannelReader<T>(ChannelCore<T> core) : ChannelReader<T>
    where T : unmanaged
{
    public override Task Completion
    {
        get
        {
            using SegmentAttachment.Use use = core.Segment.EnterUse();
            return core.Completion;
        }
    }

    public override bool CanCount => true;

    public override bool CanPeek => true;

    public override int Count
    {
        get
        {
            using SegmentAttachment.Use use = core.Segment.EnterUse();
            core.ThrowIfDetached();
            return core.Count;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryRead(out T item)
    {
        using SegmentAttachment.Use use = core.Segment.EnterUse();
        return core.TryRead(out item);
    }

    public override bool TryPeek(out T item)
    {
        using SegmentAttachment.Use use = core.Segment.EnterUse();
        return core.TryPeek(out item);
    }

    /// <summary>
    /// The BCL's enumeration; for elements that own heap storage (<see cref="ShmString"/> /
    /// <see cref="ShmVector{T}"/> fields), each element is released when the enumeration moves past it or
    /// is disposed, so <c>await foreach</c> cannot leak: copy out what must outlive the loop body.
    /// </summary>
    public override IAsyncEnumerable<T> ReadAllAsync(CancellationToken cancellationToken = default) =>
        core.Ownership is OwnedFieldsOwnership<T> owned ? ReadAllReleasingAsync(owned, cancellationToken) : base.ReadAllAsync(cancellationToken);

    private async IAsyncEnumerable<T> ReadAllReleasingAsync(OwnedFieldsOwnership<T> owned, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (await WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (TryRead(out T item))
            {
                try
                {
                    yield return item;
                }
                finally
                {
                    ReleaseIfHeld(owned, in item);
                }
            }
        }
    }

    private void ReleaseIfHeld(OwnedFieldsOwnership<T> owned, in T item)
    {
        using SegmentAttachment.Use use = core.Segment.EnterUse();
        owned.ReleaseIfHeld(in item);
    }

    public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        using SegmentAttachment.Use use = core.Segment.EnterUse();
        if (core.TryRead(out T item))
        {
            return new ValueTask<T>(item);
        }

        return core.IsCompleted && core.Count == 0
            ? ValueTask.FromException<T>(core.ClosedException())
            : core.ReadAsync(cancellationToken);
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        using SegmentAttachment.Use use = core.Segment.EnterUse();
        core.EnsureReader();
        if (core.Count > 0)
        {
            return new ValueTask<bool>(true);
        }

        if (core.IsCompleted)
        {
            return CompletedWait();
        }

        return core.WaitAsync(forData: true, cancellationToken);
    }

    /// <summary>WaitToReadAsync on a completed, empty channel: false, or the completion's error itself.</summary>
    private ValueTask<bool> CompletedWait()
    {
        if (core.Count > 0)
        {
            return new ValueTask<bool>(true);
        }

        Exception? error = core.CompletionError();
        return error is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(error);
    }
}

/// <summary>The writing end of a channel of unmanaged items.</summary>
internal sealed class UnmanagedChannelWriter<T>(ChannelCore<T> core) : ChannelWriter<T>
    where T : unmanaged
{
    public override bool TryComplete(Exception? error = null)
    {
        using SegmentAttachment.Use use = core.Segment.EnterUse();
        return core.TryComplete(error);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryWrite(T item)
    {
        using SegmentAttachment.Use use = core.Segment.EnterUse();
        return core.TryWrite(item);
    }

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        using SegmentAttachment.Use use = core.Segment.EnterUse();
        core.EnsureWriter();
        if (core.IsCompleted)
        {
            Exception? error = core.CompletionError();
            return error is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(error);
        }

        return core.HasSpace ? new ValueTask<bool>(true) : core.WaitAsync(forData: false, cancellationToken);
    }

    public override ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        using SegmentAttachment.Use use = core.Segment.EnterUse();
        if (core.TryWrite(item))
        {
            return default;
        }

        return core.IsCompleted ? ValueTask.FromException(core.ClosedException()) : core.WriteAsync(item, cancellationToken);
    }
}
