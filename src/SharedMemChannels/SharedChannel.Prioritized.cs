using SharedMemChannels.Channels;
using SharedMemChannels.Rings;

namespace SharedMemChannels;

/// <summary>Prioritized channels: <see cref="System.Threading.Channels.Channel.CreateUnboundedPrioritized{T}(System.Threading.Channels.UnboundedPrioritizedChannelOptions{T})"/> across processes.</summary>
public static partial class SharedChannel
{
    /// <summary>
    /// Creates the unbounded prioritized channel <paramref name="name"/> in <paramref name="segment"/>,
    /// ordered by <see cref="Comparer{T}.Default"/>; fails if one of that name exists (see the overload with a comparer).
    /// </summary>
    /// <typeparam name="T">An unmanaged element type; its layout is recorded, and opening the channel as another type fails.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Single reader / writer, waiting; <see cref="SharedChannelOptions.ChunkCapacity"/> is the heap's first size.</param>
    /// <returns>The channel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, <typeparamref name="T"/> holds pointers, or the options give a setting this kind of channel has no use for (a capacity, a full mode).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    public static SharedChannel<T> CreateUnboundedPrioritized<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => CreateUnboundedPrioritized<T>(segment, name, options, comparer: null);

    /// <summary>
    /// Creates the unbounded prioritized channel <paramref name="name"/> in <paramref name="segment"/>;
    /// fails if one of that name exists. Readers take the smallest item by <paramref name="comparer"/>
    /// first (ties in no particular order), as from the BCL's
    /// <see cref="System.Threading.Channels.Channel.CreateUnboundedPrioritized{T}(System.Threading.Channels.UnboundedPrioritizedChannelOptions{T})"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type; its layout is recorded, and opening the channel as another type fails.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">
    /// Single reader / writer (enforced across processes, as for every channel), notifier, persistence and
    /// waiting. <see cref="SharedChannelOptions.ChunkCapacity"/> is how many items the heap has room for
    /// before it first grows (stored with the channel). A <see cref="SharedChannelOptions.Capacity"/> or
    /// <see cref="SharedChannelOptions.FullMode"/> given is an <see cref="ArgumentException"/>, as for
    /// <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>.
    /// </param>
    /// <param name="comparer">
    /// The order; null for <see cref="Comparer{T}.Default"/>. Every process must use the same: its identity
    /// (<see cref="ISharedComparer{T}.Identity"/>, or else its type's name) is stored with the channel.
    /// </param>
    /// <returns>The channel.</returns>
    /// <remarks>
    /// <para>
    /// The items live in a binary heap in the segment (one heap block that doubles when full and halves
    /// when a quarter full), under a crash-safe lock: a process killed in the middle of an insert or a
    /// removal leaves an intent record from which the next process finishes it. Writes never wait;
    /// <c>TryPeek</c> shows the smallest item; <c>Count</c> is supported. As for
    /// <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>, the one difference from
    /// the BCL's channel is the end of memory: when the segment cannot give a larger array,
    /// <c>TryWrite</c> returns false and <c>WriteAsync</c> throws <see cref="OutOfSharedMemoryException"/>.
    /// </para>
    /// <para>
    /// The comparer runs under the channel's lock in every process that writes or reads: a comparer that
    /// throws fails that write or read and leaves the channel as it was. Opening the channel elsewhere:
    /// <see cref="OpenPrioritized{T}(SharedSegment, string, IComparer{T})"/>, or <see cref="Open{T}(SharedSegment, string)"/> for a
    /// channel ordered by <see cref="Comparer{T}.Default"/>.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, <typeparamref name="T"/> holds pointers, the options give a setting this kind of channel has no use for (a capacity, a full mode), or an <see cref="ISharedComparer{T}"/> has an empty identity.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An array of <see cref="SharedChannelOptions.ChunkCapacity"/> elements exceeds the largest allocation.</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    public static SharedChannel<T> CreateUnboundedPrioritized<T>(SharedSegment segment, string name, SharedChannelOptions options, IComparer<T>? comparer)
        where T : unmanaged => MakePrioritized(segment, name, AsPrioritized<T>(options), comparer, ChannelCore<T>.OpenMode.Create);

    /// <summary>
    /// Opens the prioritized channel <paramref name="name"/> of <paramref name="segment"/>, or creates it
    /// ordered by <see cref="Comparer{T}.Default"/> (see the overload with a comparer).
    /// </summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <returns>The channel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's (another kind of channel included).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type, or is ordered by another comparer.</exception>
    public static SharedChannel<T> OpenOrCreateUnboundedPrioritized<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => OpenOrCreateUnboundedPrioritized<T>(segment, name, options, comparer: null);

    /// <summary>
    /// Opens the prioritized channel <paramref name="name"/> of <paramref name="segment"/>, or creates it
    /// (see <see cref="CreateUnboundedPrioritized{T}(SharedSegment, string, SharedChannelOptions, IComparer{T})"/>):
    /// processes may start in any order, exactly one creates. A channel of that name of another kind, or
    /// made with other options, is an <see cref="ArgumentException"/>; one ordered by a comparer of another
    /// identity is an <see cref="InvalidCastException"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <param name="comparer">The order; null for <see cref="Comparer{T}.Default"/>.</param>
    /// <returns>The channel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's (another kind of channel included).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type, or is ordered by another comparer.</exception>
    public static SharedChannel<T> OpenOrCreateUnboundedPrioritized<T>(SharedSegment segment, string name, SharedChannelOptions options, IComparer<T>? comparer)
        where T : unmanaged => MakePrioritized(segment, name, AsPrioritized<T>(options), comparer, ChannelCore<T>.OpenMode.OpenOrCreate);

    /// <summary>
    /// Opens the existing prioritized channel <paramref name="name"/> of <paramref name="segment"/>, with
    /// the options it was made with, ordering its items by <paramref name="comparer"/> (which must be the
    /// one it was made with: its identity is checked).
    /// </summary>
    /// <typeparam name="T">The element type it was made with (or one of the same layout).</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="comparer">The order; null for <see cref="Comparer{T}.Default"/>.</param>
    /// <returns>The channel.</returns>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type, or is ordered by a comparer of another identity.</exception>
    /// <exception cref="InvalidOperationException">The channel is not prioritized, or was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedChannel<T> OpenPrioritized<T>(SharedSegment segment, string name, IComparer<T>? comparer)
        where T : unmanaged => MakePrioritized(segment, name, null, comparer, ChannelCore<T>.OpenMode.Open);

    private static SharedChannel<T> MakePrioritized<T>(SharedSegment segment, string name, SharedChannelOptions? options, IComparer<T>? comparer, ChannelCore<T>.OpenMode mode)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        if (options is not null)
        {
            SharedChannelOptions.ThrowIfNotApplicable(options, records: false);
        }

        PriorityOrder<T> order = OrderFor(comparer);
        segment.ThrowIfDisposed();
        ChannelCore<T> core = ChannelCore<T>.Open(segment.Attachment, name, options, itemDropped: null, mode, ownership: null, order);
        return new SharedChannel<T>(new UnmanagedChannelBackend<T>(core), segment, ownsSegment: false);
    }

    /// <summary>The order of <paramref name="comparer"/> and its identity: <c>default</c>, the <see cref="ISharedComparer{T}.Identity"/>, or <c>type:</c> and its type's name.</summary>
    internal static PriorityOrder<T> OrderFor<T>(IComparer<T>? comparer)
    {
        if (comparer is null || ReferenceEquals(comparer, Comparer<T>.Default))
        {
            return PriorityOrder<T>.Default;
        }

        if (comparer is ISharedComparer<T> shared)
        {
            SharedComparer.ValidateIdentity(shared.Identity, nameof(comparer));
            return new PriorityOrder<T>(comparer, shared.Identity);
        }

        return new PriorityOrder<T>(comparer, "type:" + comparer.GetType());
    }

    /// <summary>The options for a prioritized channel of <typeparamref name="T"/>, checked before anything is made.</summary>
    private static SharedChannelOptions AsPrioritized<T>(SharedChannelOptions options)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(options);
        long bytes = PriorityRing<T>.ArrayBytes(options.ChunkCapacity);
        if (bytes > SharedSegment.MaxAllocationSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ChunkCapacity, $"An array of {options.ChunkCapacity} elements of {typeof(T).Name} takes {bytes} bytes, more than the largest allocation ({SharedSegment.MaxAllocationSize}).");
        }

        SharedChannelOptions prioritized = options.Clone();
        prioritized.IsUnbounded = true;
        return prioritized;
    }
}
