using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Rings;

namespace SharedMemChannels;

/// <summary>
/// Makes and opens <see cref="SharedChannel{T}"/>s: bounded and unbounded channels in shared memory
/// that processes find by name, in a segment they share or in one made for the channel.
/// </summary>
/// <example>
/// <code>
/// // Process A
/// using var channel = SharedChannel.OpenOrCreateBounded&lt;Tick&gt;("ticks", new SharedChannelOptions(1024));
/// await channel.Writer.WriteAsync(new Tick(42, 1.5));
///
/// // Process B
/// using var channel = SharedChannel.OpenOrCreateBounded&lt;Tick&gt;("ticks", new SharedChannelOptions(1024));
/// await foreach (Tick tick in channel.Reader.ReadAllAsync()) { ... }
/// </code>
/// </example>
public static partial class SharedChannel
{
    /// <summary>The longest channel name.</summary>
    public const int MaxNameLength = ChannelLayout.MaxNameLength;

    /// <summary>Segments made for one channel by <see cref="OpenOrCreateBounded{T}(string, SharedChannelOptions)"/> carry this prefix.</summary>
    public const string SegmentPrefix = "ch.";

    /// <summary>Creates the channel <paramref name="name"/> in <paramref name="segment"/>; fails if one of that name exists.</summary>
    /// <typeparam name="T">An unmanaged element type; its layout is recorded, and opening the channel as another type fails.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Capacity, full mode, single reader / writer, waiting.</param>
    /// <exception cref="ArgumentException">The name is not valid, or <typeparamref name="T"/> holds pointers, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> CreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => CreateBounded<T>(segment, name, options, itemDropped: null);

    /// <summary>Creates the channel <paramref name="name"/> in <paramref name="segment"/>, with a callback for dropped items.</summary>
    /// <typeparam name="T">An unmanaged element type; its layout is recorded, and opening the channel as another type fails.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Capacity, full mode, single reader / writer, waiting.</param>
    /// <param name="itemDropped">Called, in this process, with each item a drop mode discards here (after the ring is released).</param>
    /// <exception cref="ArgumentException">The name is not valid, or <typeparamref name="T"/> holds pointers, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> CreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, Action<T>? itemDropped)
        where T : unmanaged => Make(segment, name, options, itemDropped, ChannelCore<T>.OpenMode.Create, ownsSegment: false);

    /// <summary>
    /// Creates the unbounded channel <paramref name="name"/> in <paramref name="segment"/>; fails if one of
    /// that name exists. Its queue is a chain of chunks of <see cref="SharedChannelOptions.ChunkCapacity"/>
    /// elements, taken from the segment's heap as it grows and given back as readers pass them.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type; its layout is recorded, and opening the channel as another type fails.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Chunk capacity, single reader / writer, waiting. A <see cref="SharedChannelOptions.Capacity"/> or <see cref="SharedChannelOptions.FullMode"/> given is an <see cref="ArgumentException"/>.</param>
    /// <remarks>
    /// <para>
    /// The channel behaves as <see cref="System.Threading.Channels.Channel.CreateUnbounded{T}(UnboundedChannelOptions)"/>'s:
    /// writes never wait, <c>WaitToWriteAsync</c> is true until the channel is completed. The one
    /// difference is the end of memory: the queue is limited by the segment's
    /// <see cref="SegmentOptions.MaxCapacity"/>. When the segment cannot give the next chunk,
    /// <c>TryWrite</c> returns false and <c>WriteAsync</c> throws <see cref="OutOfSharedMemoryException"/>
    /// (it does not wait for readers); writes succeed again once readers have freed chunks.
    /// </para>
    /// <para>
    /// <c>Count</c> is supported whatever the single reader / writer flags (a snapshot when several
    /// processes take part). <see cref="Open{T}(SharedSegment, string)"/> opens unbounded channels too.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or <typeparamref name="T"/> holds pointers, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A chunk of <see cref="SharedChannelOptions.ChunkCapacity"/> elements exceeds the largest allocation.</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the channel and its first chunk.</exception>
    public static SharedChannel<T> CreateUnbounded<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => Make(segment, name, AsUnbounded<T>(options), null, ChannelCore<T>.OpenMode.Create, ownsSegment: false);

    /// <summary>
    /// Opens the unbounded channel <paramref name="name"/> of <paramref name="segment"/>, or creates it
    /// (see <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>): processes may start in any order, exactly one creates.
    /// A bounded channel of that name, or one made with another chunk capacity or single reader / writer
    /// flags, is an <see cref="ArgumentException"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against (a Capacity or FullMode given is an <see cref="ArgumentException"/>).</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the channel and its first chunk.</exception>
    public static SharedChannel<T> OpenOrCreateUnbounded<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => Make(segment, name, AsUnbounded<T>(options), null, ChannelCore<T>.OpenMode.OpenOrCreate, ownsSegment: false);

    /// <summary>Opens the existing channel <paramref name="name"/> of <paramref name="segment"/> (bounded or unbounded), with the options it was made with.</summary>
    /// <typeparam name="T">The element type it was made with (or one of the same layout).</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="InvalidOperationException">The channel was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedChannel<T> Open<T>(SharedSegment segment, string name)
        where T : unmanaged => Open<T>(segment, name, itemDropped: null);

    /// <summary>Opens the existing channel <paramref name="name"/>, with a callback for the items this process drops.</summary>
    /// <typeparam name="T">The element type it was made with (or one of the same layout).</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="itemDropped">Called with each item a drop mode discards in this process.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="InvalidOperationException">The channel was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedChannel<T> Open<T>(SharedSegment segment, string name, Action<T>? itemDropped)
        where T : unmanaged => Make(segment, name, null, itemDropped, ChannelCore<T>.OpenMode.Open, ownsSegment: false);

    /// <summary>Opens or creates the channel <paramref name="name"/> of <paramref name="segment"/> (see the overload with a callback).</summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options)
        where T : unmanaged => OpenOrCreateBounded<T>(segment, name, options, itemDropped: null);

    /// <summary>
    /// Opens the channel <paramref name="name"/> of <paramref name="segment"/>, or creates it: processes
    /// may start in any order, exactly one creates. Options that disagree with those the channel was
    /// made with are an <see cref="ArgumentException"/>, never silently adopted.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <param name="itemDropped">Called with each item a drop mode discards in this process.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, Action<T>? itemDropped)
        where T : unmanaged => Make(segment, name, options, itemDropped, ChannelCore<T>.OpenMode.OpenOrCreate, ownsSegment: false);

    /// <summary>Opens or creates the channel <paramref name="name"/> in a segment of its own (see the overload with a callback).</summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the channel.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(string name, SharedChannelOptions options)
        where T : unmanaged => OpenOrCreateBounded<T>(name, options, itemDropped: null);

    /// <summary>
    /// Opens or creates the channel <paramref name="name"/> in a segment of its own (named
    /// <see cref="SegmentPrefix"/> + name, sized from the capacity, removed when the last process detaches
    /// unless the channel is retained for items or a completion no reader has taken yet), which the channel
    /// disposes with itself: a user who only wants a channel never handles a segment.
    /// </summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <param name="itemDropped">Called with each item a drop mode discards in this process.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel carries another element type.</exception>
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the channel.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(string name, SharedChannelOptions options, Action<T>? itemDropped)
        where T : unmanaged
    {
        ValidateName(name);
        ArgumentNullException.ThrowIfNull(options);
        SharedChannelOptions.ThrowIfNotApplicable(options, records: false); // before a segment is made for nothing
        SharedSegment segment = SharedSegment.OpenOrCreate(SegmentPrefix + name, SegmentOptionsFor<T>(options));
        try
        {
            return Make(segment, name, options, itemDropped, ChannelCore<T>.OpenMode.OpenOrCreate, ownsSegment: true);
        }
        catch
        {
            segment.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Removes the channel <paramref name="name"/> from <paramref name="segment"/>: it is completed for
    /// every process (their reads and writes fail with <see cref="ChannelClosedException"/>), it can no
    /// longer be opened (<see cref="Exists"/> is false from now on), and its memory, with the items it
    /// still holds, is freed when the last process attached to it detaches (now, for a retained channel
    /// nobody holds). The on-purpose end of a channel's items. False when there is no such channel.
    /// </summary>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    public static bool Remove(SharedSegment segment, string name)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        segment.ThrowIfDisposed();
        return ChannelCore<byte>.Remove(segment.Attachment, name);
    }

    /// <summary>
    /// Whether <paramref name="segment"/> has a channel named <paramref name="name"/> that is not removed
    /// (as <see cref="SharedTopic.Exists"/>): false once <see cref="Remove"/> ran, even while processes still
    /// hold the removed channel; true for a channel retained for the items it holds.
    /// </summary>
    /// <param name="segment">The segment to look in.</param>
    /// <param name="name">The channel's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    public static bool Exists(SharedSegment segment, string name)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        segment.ThrowIfDisposed();
        return ChannelCore<byte>.Exists(segment.Attachment, name);
    }

    private static SharedChannel<T> Make<T>(SharedSegment segment, string name, SharedChannelOptions? options, Action<T>? itemDropped, ChannelCore<T>.OpenMode mode, bool ownsSegment)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        if (mode != ChannelCore<T>.OpenMode.Open)
        {
            ArgumentNullException.ThrowIfNull(options);
            SharedChannelOptions.ThrowIfNotApplicable(options, records: false);
        }

        segment.ThrowIfDisposed();
        ChannelCore<T> core = ChannelCore<T>.Open(segment.Attachment, name, options, itemDropped, mode);
        return new SharedChannel<T>(new UnmanagedChannelBackend<T>(core), segment, ownsSegment);
    }

    /// <summary>The options for an unbounded channel of <typeparamref name="T"/>, checked before anything is made.</summary>
    private static SharedChannelOptions AsUnbounded<T>(SharedChannelOptions options)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(options);
        long chunk = UnboundedRing<T>.ChunkAllocationBytes(options.ChunkCapacity);
        if (chunk > SharedSegment.MaxAllocationSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ChunkCapacity, $"A chunk of {options.ChunkCapacity} elements of {typeof(T).Name} takes {chunk} bytes, more than the largest allocation ({SharedSegment.MaxAllocationSize}).");
        }

        SharedChannelOptions unbounded = options.Clone();
        unbounded.IsUnbounded = true;
        return unbounded;
    }

    private static void ValidateName(string name)
    {
        SharedName.Validate(name, nameof(name));
        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"A channel name has at most {MaxNameLength} characters.", nameof(name));
        }
    }

    /// <summary>A segment for one channel: room for the ring and the directory, growing if more is needed.</summary>
    private static SegmentOptions SegmentOptionsFor<T>(SharedChannelOptions options)
        where T : unmanaged
    {
        RingKind kind = ChannelRing<T>.KindFor(options.SingleReader, options.SingleWriter, options.FullMode);
        long ring = ChannelRing<T>.RequiredBytes(kind, options.Capacity) + RingLayout.LineSize;
        long capacity = Math.Max(SegmentOptions.MinCapacity, (2 * ring) + (256 * 1024));
        capacity = (capacity + Environment.SystemPageSize - 1) / Environment.SystemPageSize * Environment.SystemPageSize;
        // No limit to know: the segment may grow to whatever /dev/shm holds. Reserving that much address
        // space costs nothing until it is used; the tmpfs's size is the real bound, and the message of an
        // OutOfSharedMemoryException names it.
        long machine = PosixSharedMemoryProvider.FileSystemSpace() is { Total: > 0 } space ? space.Total : SegmentOptions.DefaultMaxCapacity;
        long max = Math.Clamp(machine / Environment.SystemPageSize * Environment.SystemPageSize, capacity, SegmentOptions.MaxSupportedCapacity);
        return new SegmentOptions
        {
            Capacity = capacity,
            MaxCapacity = max,
            RemoveOnLastDetach = true,
        };
    }
}
