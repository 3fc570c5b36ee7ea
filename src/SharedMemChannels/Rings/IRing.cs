using System.Threading.Channels;

namespace SharedMemChannels.Rings;

/// <summary>What a channel needs of a ring, whichever protocol it runs.</summary>
internal interface IRing<T>
    where T : unmanaged
{
    RingHeader Header { get; }

    int Capacity { get; }

    /// <summary>Items in the ring now (a snapshot).</summary>
    int Count { get; }

    /// <summary>Appends an item, applying <paramref name="mode"/> when full (see <see cref="RingStatus"/>).</summary>
    RingStatus TryWrite(in T item, BoundedChannelFullMode mode, out T dropped);

    /// <summary>Takes the oldest item.</summary>
    RingStatus TryRead(out T item);

    /// <summary>Copies the oldest item without taking it.</summary>
    bool TryPeek(out T item);
}
