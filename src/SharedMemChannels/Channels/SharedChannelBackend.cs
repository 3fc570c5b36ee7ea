using System.Threading.Channels;

namespace SharedMemChannels.Channels;

/// <summary>
/// What a <see cref="SharedChannel{T}"/> stands on: the unmanaged core (<see cref="UnmanagedChannelBackend{T}"/>,
/// items copied into the ring as they are) or a record channel and a serializer
/// (<see cref="Serialization.SerializedChannelBackend{T}"/>, any <typeparamref name="T"/>). The backend makes the
/// channel's sealed reader and writer once; the hot path runs in them, never through this class.
/// </summary>
internal abstract class SharedChannelBackend<T>
{
    /// <summary>The channel's name in its segment.</summary>
    public abstract string Name { get; }

    /// <summary>The options as stored with the channel.</summary>
    public abstract SharedChannelOptions Options { get; }

    /// <summary>The reading end (made once).</summary>
    public abstract ChannelReader<T> Reader { get; }

    /// <summary>The writing end (made once).</summary>
    public abstract ChannelWriter<T> Writer { get; }

    /// <summary>The identity of the serializer the channel carries its items with; null for unmanaged items.</summary>
    public virtual string? SerializerIdentity => null;

    /// <summary>The identity of the comparer a prioritized channel is ordered by; null for the other kinds.</summary>
    public virtual string? ComparerIdentity => null;

    /// <summary>Detaches this process (its channel instance is disposed).</summary>
    public abstract void Detach();

    /// <summary>Frees the heap storage an element read here owns (<see cref="SharedChannel{T}.Release"/>).</summary>
    public abstract void Release(in T item);
}
