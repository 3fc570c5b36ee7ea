using System.Threading.Channels;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// The ring under a channel, behind one shape so that the channel's state machine is written once:
/// the SPSC ring when one process reads and one writes in Wait or DropWrite mode, the MPMC ring
/// otherwise (its claims are what DropOldest and DropNewest need, and what several readers or writers
/// need).
/// </summary>
internal abstract class ChannelRing<T>
    where T : unmanaged
{
    public abstract RingHeader Header { get; }

    public abstract int Count { get; }

    /// <summary>Writes <paramref name="item"/> as <paramref name="mode"/> says; see <see cref="RingStatus"/>.</summary>
    public abstract RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped);

    public abstract RingStatus TryRead(out T item);

    public abstract bool TryPeek(out T item);

    /// <summary>The kind of ring a channel of this shape uses.</summary>
    public static RingKind KindFor(bool singleReader, bool singleWriter, BoundedChannelFullMode mode) =>
        singleReader && singleWriter && mode is BoundedChannelFullMode.Wait or BoundedChannelFullMode.DropWrite ? RingKind.Spsc : RingKind.Mpmc;

    /// <summary>Bytes a ring of this kind and capacity needs.</summary>
    public static long RequiredBytes(RingKind kind, int capacity) =>
        kind == RingKind.Spsc ? SpscRing<T>.RequiredBytes(capacity) : MpmcRing<T>.RequiredBytes(capacity);

    /// <summary>Lays out a new ring in the block.</summary>
    public static ChannelRing<T> Create(RingKind kind, SegmentMemory memory, long offset, long length, int capacity, ProcessTable processes, OwnerId me) =>
        kind == RingKind.Spsc
            ? new Spsc(SpscRing<T>.Create(memory, offset, length, capacity, processes))
            : new Mpmc(MpmcRing<T>.Create(memory, offset, length, capacity, processes, me));

    /// <summary>Attaches to a ring laid out by another process; its header is checked.</summary>
    public static ChannelRing<T> Attach(RingKind kind, SegmentMemory memory, long offset, long length, ProcessTable processes, OwnerId me) =>
        kind == RingKind.Spsc
            ? new Spsc(SpscRing<T>.Attach(memory, offset, length, processes))
            : new Mpmc(MpmcRing<T>.Attach(memory, offset, length, processes, me));

    private sealed class Spsc(SpscRing<T> ring) : ChannelRing<T>
    {
        public override RingHeader Header => ring.Header;

        public override int Count => ring.Count;

        public override RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped)
        {
            if (ring.TryWrite(in item))
            {
                dropped = default;
                return RingStatus.Success;
            }

            if (mode == BoundedChannelFullMode.DropWrite)
            {
                Interlocked.Increment(ref ring.Header.DroppedWord);
                dropped = item;
                return RingStatus.DroppedItem;
            }

            dropped = default;
            return RingStatus.Full;
        }

        public override RingStatus TryRead(out T item) => ring.TryRead(out item) ? RingStatus.Success : RingStatus.Empty;

        public override bool TryPeek(out T item) => ring.TryPeek(out item);
    }

    private sealed class Mpmc(MpmcRing<T> ring) : ChannelRing<T>
    {
        public override RingHeader Header => ring.Header;

        public override int Count => ring.Count;

        public override RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped) => ring.TryWrite(in item, mode, out dropped);

        public override RingStatus TryRead(out T item) => ring.TryRead(out item);

        public override bool TryPeek(out T item) => ring.TryPeek(out item);
    }
}
