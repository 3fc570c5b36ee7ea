using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// A bounded channel whose items live in shared memory: any number of processes open it by name and
/// use its <c>Reader</c> and <c>Writer</c> exactly as those of a
/// <see cref="Channel.CreateBounded{T}(BoundedChannelOptions)"/> channel between threads.
/// </summary>
/// <typeparam name="T">An unmanaged type: items are copied into the ring as they are.</typeparam>
/// <remarks>
/// <para>
/// Made and opened through <see cref="SharedChannel"/>. Each process holds its own instance and
/// disposes it to detach; the channel stays in its segment for the others until it is removed with
/// <see cref="SharedChannel.Remove"/>.
/// </para>
/// <para>
/// Across processes: completion is seen by every process (an exception passed to
/// <see cref="ChannelWriter{T}.Complete"/> reaches other processes as a <see cref="RemoteChannelException"/>
/// with its type name and message); <see cref="ChannelReader{T}.Count"/> and
/// <see cref="ChannelReader{T}.TryPeek"/> are snapshots when several processes read; a pending read or
/// write fails with <see cref="ChannelAbandonedException"/> when every process that wrote (read) has
/// died without completing the channel, which stays open for a restarted peer. A waiting reader or
/// writer spins for <see cref="SharedChannelOptions.SpinCount"/>, then sleeps in the kernel; pending
/// asynchronous operations are served by one waiter thread per process, never a thread each.
/// </para>
/// </remarks>
public sealed class SharedChannel<T> : Channel<T>, IDisposable
    where T : unmanaged
{
    private readonly ChannelCore<T> _core;
    private readonly SharedSegment? _ownedSegment;
    private readonly SharedSegment _segment;

    internal SharedChannel(ChannelCore<T> core, SharedSegment segment, bool ownsSegment)
    {
        _core = core;
        _segment = segment;
        _ownedSegment = ownsSegment ? segment : null;
        Reader = new SharedChannelReader(core);
        Writer = new SharedChannelWriter(core);
    }

    /// <summary>This process's hold on the channel (for tests and diagnostics).</summary>
    internal ChannelCore<T> Core => _core;

    /// <summary>The channel's name in its segment.</summary>
    public string Name => _core.Name;

    /// <summary>The segment the channel lives in.</summary>
    public SharedSegment Segment => _segment;

    /// <summary>The channel's capacity; <see cref="int.MaxValue"/> for an unbounded channel.</summary>
    public int Capacity => _core.Options.IsUnbounded ? int.MaxValue : _core.Options.Capacity;

    /// <summary>Whether the channel is unbounded (<see cref="SharedChannel.CreateUnbounded{T}"/>): its queue grows in chunks of <see cref="SharedChannelOptions.ChunkCapacity"/> elements.</summary>
    public bool IsUnbounded => _core.Options.IsUnbounded;

    /// <summary>What a write into the full channel does.</summary>
    public BoundedChannelFullMode FullMode => _core.Options.FullMode;

    /// <summary>Whether one process at a time reads.</summary>
    public bool SingleReader => _core.Options.SingleReader;

    /// <summary>Whether one process at a time writes.</summary>
    public bool SingleWriter => _core.Options.SingleWriter;

    /// <summary>
    /// Detaches this process: gives up its single-reader or single-writer end if it held one. The channel
    /// and its items stay for the other processes. A channel opened without a segment also detaches its
    /// segment, which goes when the last process detaches.
    /// </summary>
    public void Dispose()
    {
        _core.Detach();
        _ownedSegment?.Dispose();
    }

    /// <summary>
    /// Frees the heap storage an element read from this channel owns: each <see cref="ShmString"/> and
    /// <see cref="ShmVector{T}"/> field (nested structs included). Call it once per element read, when done
    /// with it; <c>await foreach</c> over <see cref="ChannelReader{T}.ReadAllAsync"/> does it for you. Nothing
    /// for an element type without such fields.
    /// </summary>
    /// <remarks>
    /// The storage of an element is owned by the segment from the write on (the channel holds it), by the
    /// reading process once read (reclaimed if it dies), and freed exactly once: here, by the channel when a
    /// drop mode drops the element (after the <c>itemDropped</c> callback returns), or when the channel is
    /// destroyed with the element still queued. A write the channel refuses (<c>TryWrite</c> false, a failed or
    /// canceled <c>WriteAsync</c>) leaves the storage this process's: write the element again later, or
    /// release it here. An element built and never offered to the channel is not the channel's: free its
    /// fields yourself (<see cref="ShmString.Free"/>).
    /// </remarks>
    /// <param name="item">An element this process read from the channel (or failed to write to it).</param>
    /// <exception cref="InvalidOperationException">
    /// The element's storage is not this process's: it was released already (or freed), is still queued, or was never read here.
    /// </exception>
    public void Release(in T item) => (_core.Ownership as OwnedFieldsOwnership<T>)?.Release(in item, requireOwner: true);

    /// <inheritdoc />
    public override string ToString() => IsUnbounded
        ? $"SharedChannel<{typeof(T).Name}> '{Name}' in '{_segment.Name}' (unbounded, chunks of {_core.Options.ChunkCapacity})"
        : $"SharedChannel<{typeof(T).Name}> '{Name}' in '{_segment.Name}' (capacity {Capacity}, {FullMode})";

    /// <summary>The reading end.</summary>
    private sealed class SharedChannelReader(ChannelCore<T> core) : ChannelReader<T>
    {
        public override Task Completion => core.Completion;

        public override bool CanCount => true;

        public override bool CanPeek => true;

        public override int Count
        {
            get
            {
                core.ThrowIfDetached();
                return core.Count;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override bool TryRead(out T item) => core.TryRead(out item);

        public override bool TryPeek(out T item) => core.TryPeek(out item);

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
                        owned.ReleaseIfHeld(in item);
                    }
                }
            }
        }

        public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<T>(cancellationToken);
            }

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

    /// <summary>The writing end.</summary>
    private sealed class SharedChannelWriter(ChannelCore<T> core) : ChannelWriter<T>
    {
        public override bool TryComplete(Exception? error = null) => core.TryComplete(error);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override bool TryWrite(T item) => core.TryWrite(item);

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(cancellationToken);
            }

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

            if (core.TryWrite(item))
            {
                return default;
            }

            return core.IsCompleted ? ValueTask.FromException(core.ClosedException()) : core.WriteAsync(item, cancellationToken);
        }
    }
}
