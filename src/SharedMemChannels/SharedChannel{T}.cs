using System.Threading.Channels;
using SharedMemChannels.Channels;

namespace SharedMemChannels;

/// <summary>
/// A bounded channel whose items live in shared memory: any number of processes open it by name and
/// use its <c>Reader</c> and <c>Writer</c> exactly as those of a
/// <see cref="Channel.CreateBounded{T}(BoundedChannelOptions)"/> channel between threads.
/// </summary>
/// <typeparam name="T">
/// Any type. A channel of an unmanaged type (made by the factories without a serializer) copies items
/// into the ring as they are; a channel made with an <see cref="ISharedSerializer{T}"/> carries each item
/// as a record of the segment's heap that the writer serializes into and the reader deserializes from.
/// </typeparam>
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
{
    private readonly SharedChannelBackend<T> _backend;
    private readonly SharedSegment? _ownedSegment;
    private readonly SharedSegment _segment;

    internal SharedChannel(SharedChannelBackend<T> backend, SharedSegment segment, bool ownsSegment)
    {
        _backend = backend;
        _segment = segment;
        _ownedSegment = ownsSegment ? segment : null;
        Reader = backend.Reader;
        Writer = backend.Writer;
    }

    /// <summary>What the channel stands on: the unmanaged core, or a record channel and a serializer.</summary>
    internal SharedChannelBackend<T> Backend => _backend;

    /// <summary>The channel's name in its segment.</summary>
    public string Name => _backend.Name;

    /// <summary>The segment the channel lives in.</summary>
    public SharedSegment Segment => _segment;

    /// <summary>The channel's capacity; <see cref="int.MaxValue"/> for an unbounded channel.</summary>
    public int Capacity => _backend.Options.IsUnbounded ? int.MaxValue : _backend.Options.Capacity;

    /// <summary>Whether the channel is unbounded (<see cref="SharedChannel.CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>): its queue grows in chunks of <see cref="SharedChannelOptions.ChunkCapacity"/> elements.</summary>
    public bool IsUnbounded => _backend.Options.IsUnbounded;

    /// <summary>
    /// The identity of the comparer a prioritized channel orders its items by (<c>default</c> for
    /// <see cref="Comparer{T}.Default"/>); null for a channel that is not prioritized.
    /// </summary>
    public string? ComparerIdentity => _backend.ComparerIdentity;

    /// <summary>What a write into the full channel does.</summary>
    public BoundedChannelFullMode FullMode => _backend.Options.FullMode;

    /// <summary>Whether one process at a time reads.</summary>
    public bool SingleReader => _backend.Options.SingleReader;

    /// <summary>Whether one process at a time writes.</summary>
    public bool SingleWriter => _backend.Options.SingleWriter;

    /// <summary>
    /// The <see cref="ISharedSerializer{T}.Identity"/> of the serializer this channel carries its items
    /// with (as stored with the channel); null for a channel of unmanaged items.
    /// </summary>
    public string? SerializerIdentity => _backend.SerializerIdentity;

    /// <summary>
    /// Detaches this process: gives up its single-reader or single-writer end if it held one. The channel
    /// and its items stay for the other processes. A channel opened without a segment also detaches its
    /// segment, which goes when the last process detaches.
    /// </summary>
    public void Dispose()
    {
        _backend.Detach();
        _ownedSegment?.Dispose();
    }

    /// <summary>
    /// Frees the heap storage an element read from this channel owns: each <see cref="ShmString"/> and
    /// <see cref="ShmVector{T}"/> field (nested structs included). Call it once per element read, when done
    /// with it; <c>await foreach</c> over <see cref="ChannelReader{T}.ReadAllAsync"/> does it for you. Nothing
    /// for an element type without such fields, and nothing for a serialized channel (its records are freed
    /// as they are read).
    /// </summary>
    /// <remarks>
    /// The storage of an element is owned by the segment from the write on (the channel holds it), by the
    /// reading process once read (reclaimed if it dies), and freed exactly once: here, by the channel when a
    /// drop mode drops the element (after the <c>itemDropped</c> callback returns), or when the channel is
    /// destroyed with the element still queued. A write the channel refuses (<c>TryWrite</c> false, a failed or
    /// canceled <c>WriteAsync</c>) leaves the storage this process's: write the element again later, or
    /// release it here. An element built and never offered to the channel is not the channel's: free its
    /// fields yourself (<see cref="ShmString.Free"/>). Storage made by <see cref="ShmString.Create"/> is the
    /// segment's until written, so a writer killed between building an element and writing it leaks it; to
    /// be safe there, give the new blocks to the process (<see cref="SharedSegment.SetOwnership"/>) first:
    /// the write hands them to the channel.
    /// </remarks>
    /// <param name="item">An element this process read from the channel (or failed to write to it).</param>
    /// <exception cref="InvalidOperationException">
    /// The element's storage is not this process's: it was released already (or freed), is still queued, or was never read here.
    /// </exception>
    public void Release(in T item) => _backend.Release(in item);

    /// <inheritdoc />
    public override string ToString()
    {
        string shape = IsUnbounded
            ? $"unbounded, chunks of {_backend.Options.ChunkCapacity}"
            : $"capacity {Capacity}, {FullMode}";
        return SerializerIdentity is { } identity
            ? $"SharedChannel<{typeof(T).Name}> '{Name}' in '{_segment.Name}' ({shape}, serialized by {identity})"
            : $"SharedChannel<{typeof(T).Name}> '{Name}' in '{_segment.Name}' ({shape})";
    }
}

/// <summary>Internal access to the unmanaged core under a <see cref="SharedChannel{T}"/> (tests and diagnostics).</summary>
internal static class SharedChannelInternals
{
    extension<T>(SharedChannel<T> channel)
        where T : unmanaged
    {
        /// <summary>This process's hold on the channel; an <see cref="InvalidCastException"/> for a serialized channel.</summary>
        internal ChannelCore<T> Core => ((UnmanagedChannelBackend<T>)channel.Backend).Core;
    }
}
