using System.Threading.Channels;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// Chooses and makes the ring under a channel (seen through <see cref="IRing{T}"/>, so that the
/// channel's state machine is written once): the SPSC ring when one process reads and one writes in
/// Wait or DropWrite mode, the MPMC ring otherwise (its claims are what DropOldest and DropNewest need,
/// and what several readers or writers need).
/// </summary>
internal static class ChannelRing<T>
    where T : unmanaged
{
    /// <summary>The kind of ring a channel of this shape uses.</summary>
    public static RingKind KindFor(bool singleReader, bool singleWriter, BoundedChannelFullMode mode) =>
        singleReader && singleWriter && mode is BoundedChannelFullMode.Wait or BoundedChannelFullMode.DropWrite ? RingKind.Spsc : RingKind.Mpmc;

    /// <summary>Bytes a ring of this kind and capacity needs.</summary>
    public static long RequiredBytes(RingKind kind, int capacity) =>
        kind == RingKind.Spsc ? SpscRing<T>.RequiredBytes(capacity) : MpmcRing<T>.RequiredBytes(capacity);

    /// <summary>Lays out a new ring in the block.</summary>
    public static IRing<T> Create(RingKind kind, SegmentMemory memory, long offset, long length, int capacity, ProcessTable processes, OwnerId me) =>
        kind == RingKind.Spsc
            ? SpscRing<T>.Create(memory, offset, length, capacity, processes)
            : MpmcRing<T>.Create(memory, offset, length, capacity, processes, me);

    /// <summary>Attaches to a ring laid out by another process; its header is checked.</summary>
    public static IRing<T> Attach(RingKind kind, SegmentMemory memory, long offset, long length, ProcessTable processes, OwnerId me) =>
        kind == RingKind.Spsc
            ? SpscRing<T>.Attach(memory, offset, length, processes)
            : MpmcRing<T>.Attach(memory, offset, length, processes, me);
}
