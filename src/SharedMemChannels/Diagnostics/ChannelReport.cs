using System.Threading.Channels;

namespace SharedMemChannels.Diagnostics;

/// <summary>A channel of a segment, as its control block and ring say at the moment of the report.</summary>
/// <remarks>Read without attaching and without locks: counters are snapshots, and may be a little apart from each other.</remarks>
public sealed record ChannelReport
{
    internal ChannelReport()
    {
    }

    /// <summary>The channel's name.</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>Ready, initializing (being made), or removed (waiting for its last process to detach).</summary>
    public string State { get; init; } = string.Empty;

    /// <summary>The element type's name as its creator knew it.</summary>
    public string ElementTypeName { get; init; } = string.Empty;

    /// <summary>
    /// What the channel carries: "unmanaged" (a <see cref="SharedChannel{T}"/> of structs), "records" (a
    /// <see cref="SharedRecordChannel"/>: its elements are record handles) or "serialized" (records holding
    /// serialized values).
    /// </summary>
    public string ElementKind { get; init; } = string.Empty;

    /// <summary>
    /// Serialized channels: the identity of the serializer the channel was made with
    /// (<see cref="ISharedSerializer{T}.Identity"/>, as stored: at most 120 UTF-8 bytes); empty for other channels.
    /// </summary>
    public string SerializerIdentity { get; init; } = string.Empty;

    /// <summary>Record channels: the largest record a writer may allocate; 0 for other channels.</summary>
    public int MaxRecordSize { get; init; }

    /// <summary>How many heap handles each element owns (freed with the element): a record slot's one, a struct's ShmString / ShmVector fields.</summary>
    public int OwnedHandles { get; init; }

    /// <summary>The element's size in bytes.</summary>
    public int ElementSize { get; init; }

    /// <summary>The capacity; <see cref="int.MaxValue"/> for an unbounded channel.</summary>
    public int Capacity { get; init; }

    /// <summary>Whether the channel is unbounded (its queue is a chain of chunks from the heap).</summary>
    public bool IsUnbounded { get; init; }

    /// <summary>Elements per chunk of an unbounded channel; 0 for a bounded one.</summary>
    public int ChunkCapacity { get; init; }

    /// <summary>Chunks an unbounded channel holds now; 0 for a bounded one.</summary>
    public long ChunkCount { get; init; }

    /// <summary>Heap bytes an unbounded channel's chunks (a prioritized channel's element array) take now; 0 for a bounded one.</summary>
    public long ChunkBytes { get; init; }

    /// <summary>
    /// The identity of the comparer a prioritized channel orders its items by (<c>default</c> for
    /// <see cref="System.Collections.Generic.Comparer{T}.Default"/>); null for the other channels.
    /// </summary>
    public string? ComparerIdentity { get; init; }

    /// <summary>How many items a prioritized channel's element array has room for now (it doubles and halves); 0 for the other channels.</summary>
    public long HeapCapacity { get; init; }

    /// <summary>What a write into the full channel does.</summary>
    public BoundedChannelFullMode FullMode { get; init; }

    /// <summary>Whether one process at a time reads.</summary>
    public bool SingleReader { get; init; }

    /// <summary>Whether one process at a time writes.</summary>
    public bool SingleWriter { get; init; }

    /// <summary>Whether the channel outlives its last reference (<see cref="SharedChannelOptions.Persistent"/>).</summary>
    public bool Persistent { get; init; }

    /// <summary>
    /// Whether the channel stays when its last reference goes while it holds items or a completion no
    /// reader has seen (<see cref="SharedChannelOptions.RetainUndelivered"/>, true by default).
    /// </summary>
    public bool RetainUndelivered { get; init; }

    /// <summary>
    /// Whether the channel is retained: ready, not persistent, held by no live process, and kept only for
    /// what it still holds (<see cref="Count"/> items, or a completion no reader has seen) until a reader
    /// takes it or the channel is removed.
    /// </summary>
    public bool Retained { get; init; }

    /// <summary>Whether a reader process has seen the channel completed and drained (false while it is open).</summary>
    public bool CompletionSeen { get; init; }

    /// <summary>The ring under the channel: "spsc", "mpmc" or "unbounded".</summary>
    public string Ring { get; init; } = string.Empty;

    /// <summary>Items in the channel now.</summary>
    public long Count { get; init; }

    /// <summary>Items written since the channel was made.</summary>
    public long Written { get; init; }

    /// <summary>Items read since the channel was made.</summary>
    public long Read { get; init; }

    /// <summary>Items a drop mode discarded.</summary>
    public long Dropped { get; init; }

    /// <summary>Items a reader claimed and died holding (never delivered).</summary>
    public long Lost { get; init; }

    /// <summary>Cells a writer claimed and died before filling (skipped; nothing was written).</summary>
    public long Skipped { get; init; }

    /// <summary>
    /// Holders with readers sleeping until something is written: each process (each instance of the
    /// channel in it) counts once, however many of its reads wait. A process killed while waiting is taken
    /// off at the next attach or <see cref="SharedSegment.ReclaimDeadProcesses"/>.
    /// </summary>
    public int WaitingReaders { get; init; }

    /// <summary>Holders with writers sleeping until something is read (counted as <see cref="WaitingReaders"/>).</summary>
    public int WaitingWriters { get; init; }

    /// <summary>"open", "completed", "faulted" or "canceled".</summary>
    public string Completion { get; init; } = string.Empty;

    /// <summary>The completing error ("Type: message"), when it faulted or was canceled with one.</summary>
    public string? CompletionError { get; init; }

    /// <summary>The processes attached to the channel, with the ends they used.</summary>
    public IReadOnlyList<ChannelEndpointReport> Endpoints { get; init; } = [];
}

/// <summary>A process attached to a channel.</summary>
public sealed record ChannelEndpointReport
{
    internal ChannelEndpointReport()
    {
    }

    /// <summary>The process id (0 when its process-table slot no longer names it).</summary>
    public int ProcessId { get; init; }

    /// <summary>Its slot in the segment's process table.</summary>
    public int Slot { get; init; }

    /// <summary>Whether it has read.</summary>
    public bool IsReader { get; init; }

    /// <summary>Whether it has written.</summary>
    public bool IsWriter { get; init; }

    /// <summary>Whether it holds the single-reader end.</summary>
    public bool HoldsReaderLease { get; init; }

    /// <summary>Whether it holds the single-writer end.</summary>
    public bool HoldsWriterLease { get; init; }

    /// <summary>Whether the process still runs.</summary>
    public ProcessLiveness Liveness { get; init; }
}
