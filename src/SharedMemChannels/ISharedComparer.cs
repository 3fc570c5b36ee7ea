namespace SharedMemChannels;

/// <summary>
/// A comparer with a name, for a prioritized <see cref="SharedChannel{T}"/>
/// (<see cref="SharedChannel.CreateUnboundedPrioritized{T}(SharedSegment, string, SharedChannelOptions, IComparer{T})"/>):
/// every process that uses the channel sorts its items, so every process must sort the same way.
/// </summary>
/// <typeparam name="T">The channel's element type.</typeparam>
/// <remarks>
/// <para>
/// The identity of the comparer that made the channel is stored with it, and a process that opens the
/// channel with a comparer of another identity gets an <see cref="InvalidCastException"/>. Without this
/// interface a comparer is identified by its type's name, which cannot tell two
/// <see cref="Comparer{T}.Create(Comparison{T})"/> comparers apart (both are the same type): give such a
/// comparer its identity with <see cref="SharedComparer.Create{T}(string, Comparison{T})"/>, or implement
/// this interface. <see langword="null"/> and <see cref="Comparer{T}.Default"/> are identified as
/// <c>default</c>.
/// </para>
/// <para>
/// The comparer runs under the channel's lock, in whichever process writes or reads: it must be fast,
/// thread-safe, must not use the channel, and must give every process the same answer for the same items.
/// </para>
/// </remarks>
public interface ISharedComparer<in T> : IComparer<T>
{
    /// <summary>
    /// Names the order (and whatever settings change it), for instance <c>orders-by-deadline-v1</c>:
    /// stored with the channel and compared on open (ordinal). Not empty, and not <c>default</c>.
    /// </summary>
    string Identity { get; }
}
