using System.Threading.Channels;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// Chooses and makes the ring under a channel (seen through <see cref="IRing{T}"/>, so that the
/// channel's state machine is written once): for a bounded channel, the SPSC ring when one process
/// reads and one writes in Wait or DropWrite mode, the MPMC ring otherwise (its claims are what
/// DropOldest and DropNewest need, and what several readers or writers need); for an unbounded
/// channel, the chain of chunks (<see cref="UnboundedRing{T}"/>), whatever the single reader / writer
/// flags say; for a prioritized channel, the binary heap (<see cref="PriorityRing{T}"/>).
/// </summary>
internal static class ChannelRing<T>
    where T : unmanaged
{
    /// <summary>The kind of ring a channel of this shape uses.</summary>
    public static RingKind KindFor(bool singleReader, bool singleWriter, BoundedChannelFullMode mode, bool unbounded = false, bool prioritized = false) =>
        prioritized ? RingKind.Prioritized :
        unbounded ? RingKind.Unbounded :
        singleReader && singleWriter && mode is BoundedChannelFullMode.Wait or BoundedChannelFullMode.DropWrite ? RingKind.Spsc : RingKind.Mpmc;

    /// <summary>Bytes a ring of this kind and capacity needs (for an unbounded ring: its own block, chunks apart).</summary>
    public static long RequiredBytes(RingKind kind, int capacity) => kind switch
    {
        RingKind.Spsc => SpscRing<T>.RequiredBytes(capacity),
        RingKind.Unbounded => UnboundedRing<T>.RequiredBytes(),
        RingKind.Prioritized => PriorityRing<T>.RequiredBytes(),
        _ => MpmcRing<T>.RequiredBytes(capacity),
    };

    /// <summary>
    /// Lays out a new ring in the block (for an unbounded ring, <paramref name="capacity"/> is the chunk
    /// capacity; for a prioritized one, the heap's first array size, and <paramref name="order"/> its order).
    /// </summary>
    public static IRing<T> Create(RingKind kind, SegmentAttachment segment, long offset, long length, int capacity, bool singleReader, bool singleWriter, PriorityOrder<T>? order = null) => kind switch
    {
        RingKind.Spsc => SpscRing<T>.Create(segment.Memory, offset, length, capacity, segment.Processes),
        RingKind.Unbounded => UnboundedRing<T>.Create(segment, offset, length, capacity, singleReader, singleWriter),
        RingKind.Prioritized => PriorityRing<T>.Create(segment, offset, length, capacity, order ?? throw new ArgumentNullException(nameof(order))),
        _ => MpmcRing<T>.Create(segment.Memory, offset, length, capacity, segment.Processes, segment.Owner),
    };

    /// <summary>Attaches to a ring laid out by another process; its header is checked (and a prioritized ring's comparer identity).</summary>
    public static IRing<T> Attach(RingKind kind, SegmentAttachment segment, long offset, long length, bool singleReader, bool singleWriter, PriorityOrder<T>? order = null) => kind switch
    {
        RingKind.Spsc => SpscRing<T>.Attach(segment.Memory, offset, length, segment.Processes),
        RingKind.Unbounded => UnboundedRing<T>.Attach(segment, offset, length, singleReader, singleWriter),
        RingKind.Prioritized => PriorityRing<T>.Attach(segment, offset, length, order ?? throw new ArgumentNullException(nameof(order))),
        _ => MpmcRing<T>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner),
    };
}
