using SharedMemChannels.Channels;
using SharedMemChannels.Records;
using SharedMemChannels.Serialization;

namespace SharedMemChannels;

/// <content>Channels of any .NET type, carried as records through an <see cref="ISharedSerializer{T}"/>.</content>
public static partial class SharedChannel
{
    /// <summary>
    /// Creates the channel <paramref name="name"/> of <typeparamref name="T"/> items, any type, in
    /// <paramref name="segment"/>; fails if a channel of that name exists. Each item travels as a record of
    /// the segment's heap: the writer serializes it straight into the record, the reader deserializes from
    /// the record's bytes and frees it.
    /// </summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Capacity (items queued at most), full mode, single reader / writer, waiting, and <see cref="SharedChannelOptions.MaxRecordSize"/> (the largest serialized item).</param>
    /// <param name="serializer">The format; its <see cref="ISharedSerializer{T}.Identity"/> is stored with the channel, and every process must open it with a serializer of the same identity.</param>
    /// <remarks>
    /// <para>
    /// An item that serializes to more than <see cref="SharedChannelOptions.MaxRecordSize"/> bytes is an
    /// <see cref="ArgumentException"/> from the write; a write when the segment has no room for the record
    /// is <c>false</c> from <c>TryWrite</c> and an <see cref="OutOfSharedMemoryException"/> from <c>WriteAsync</c>.
    /// Bytes the serializer cannot read back make the read throw an <see cref="InvalidDataException"/>
    /// (with the serializer's exception inside); that item is consumed and the channel goes on.
    /// </para>
    /// <para>
    /// The reader cannot peek (<see cref="System.Threading.Channels.ChannelReader{T}.CanPeek"/> is false).
    /// Records queued when the channel is destroyed, and records held by a process that dies, are freed.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the serializer's identity is empty, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> CreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer) =>
        MakeSerialized(segment, name, options, serializer, null, ChannelCore<RecordSlot>.OpenMode.Create);

    /// <summary>
    /// Creates the channel <paramref name="name"/> of <typeparamref name="T"/> items, any type (see the
    /// overload without a callback), with a callback for the items a drop mode discards in this process.
    /// </summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Capacity, full mode, single reader / writer, waiting, <see cref="SharedChannelOptions.MaxRecordSize"/>.</param>
    /// <param name="serializer">The format, stored with the channel by its identity.</param>
    /// <param name="itemDropped">
    /// Called, in this process, with each item a drop mode discards here, deserialized from its record (which
    /// is freed once the callback returns). A record that does not deserialize makes the write that dropped it
    /// throw an <see cref="InvalidDataException"/> (the record is freed all the same).
    /// </param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the serializer's identity is empty, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> CreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer, Action<T>? itemDropped) =>
        MakeSerialized(segment, name, options, serializer, itemDropped, ChannelCore<RecordSlot>.OpenMode.Create);

    /// <summary>Opens the existing channel <paramref name="name"/> of <typeparamref name="T"/> items carried through <paramref name="serializer"/>.</summary>
    /// <typeparam name="T">The element type it was made with.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="serializer">A serializer of the identity the channel was made with.</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">
    /// The channel was made with a serializer of another identity or for another element type, or is not a
    /// serialized channel (a channel of unmanaged items, or a record channel).
    /// </exception>
    /// <exception cref="InvalidOperationException">The channel was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedChannel<T> Open<T>(SharedSegment segment, string name, ISharedSerializer<T> serializer) =>
        MakeSerialized(segment, name, null, serializer, null, ChannelCore<RecordSlot>.OpenMode.Open);

    /// <summary>Opens the existing serialized channel <paramref name="name"/>, with a callback for the items this process drops.</summary>
    /// <typeparam name="T">The element type it was made with.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="serializer">A serializer of the identity the channel was made with.</param>
    /// <param name="itemDropped">Called with each item a drop mode discards in this process (deserialized from its record).</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">The channel was made with a serializer of another identity or for another element type, or is not a serialized channel.</exception>
    /// <exception cref="InvalidOperationException">The channel was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedChannel<T> Open<T>(SharedSegment segment, string name, ISharedSerializer<T> serializer, Action<T>? itemDropped) =>
        MakeSerialized(segment, name, null, serializer, itemDropped, ChannelCore<RecordSlot>.OpenMode.Open);

    /// <summary>
    /// Opens the serialized channel <paramref name="name"/> of <paramref name="segment"/>, or creates it
    /// (see <see cref="CreateBounded{T}(SharedSegment, string, SharedChannelOptions, ISharedSerializer{T})"/>):
    /// processes may start in any order, exactly one creates. Options that disagree with the existing
    /// channel's are an <see cref="ArgumentException"/>; another serializer identity or element type, an
    /// <see cref="InvalidCastException"/>.
    /// </summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <param name="serializer">The format, stored with the channel by its identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel was made with a serializer of another identity or for another element type, or is not a serialized channel.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer) =>
        MakeSerialized(segment, name, options, serializer, null, ChannelCore<RecordSlot>.OpenMode.OpenOrCreate);

    /// <summary>Opens or creates the serialized channel <paramref name="name"/>, with a callback for the items this process drops.</summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <param name="serializer">The format, stored with the channel by its identity.</param>
    /// <param name="itemDropped">Called with each item a drop mode discards in this process (deserialized from its record).</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel was made with a serializer of another identity or for another element type, or is not a serialized channel.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedChannel<T> OpenOrCreateBounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer, Action<T>? itemDropped) =>
        MakeSerialized(segment, name, options, serializer, itemDropped, ChannelCore<RecordSlot>.OpenMode.OpenOrCreate);

    /// <summary>
    /// Creates the unbounded channel <paramref name="name"/> of <typeparamref name="T"/> items, any type:
    /// the queue of records grows in chunks of <see cref="SharedChannelOptions.ChunkCapacity"/> (see
    /// <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>), each item serialized as in
    /// <see cref="CreateBounded{T}(SharedSegment, string, SharedChannelOptions, ISharedSerializer{T})"/>.
    /// Writes never wait; when the segment has no room for a chunk or a record, <c>TryWrite</c> returns false
    /// and <c>WriteAsync</c> throws <see cref="OutOfSharedMemoryException"/>.
    /// </summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Chunk capacity, single reader / writer, waiting, <see cref="SharedChannelOptions.MaxRecordSize"/>; a Capacity or FullMode given is an <see cref="ArgumentException"/>.</param>
    /// <param name="serializer">The format, stored with the channel by its identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the serializer's identity is empty, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the channel and its first chunk.</exception>
    public static SharedChannel<T> CreateUnbounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer) =>
        MakeSerialized(segment, name, AsUnbounded<RecordSlot>(options), serializer, null, ChannelCore<RecordSlot>.OpenMode.Create);

    /// <summary>
    /// Opens the unbounded serialized channel <paramref name="name"/>, or creates it (see
    /// <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions, ISharedSerializer{T})"/>).
    /// </summary>
    /// <typeparam name="T">Any type, managed types included.</typeparam>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against (a Capacity or FullMode given is an <see cref="ArgumentException"/>).</param>
    /// <param name="serializer">The format, stored with the channel by its identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="segment"/>, <paramref name="options"/> or <paramref name="serializer"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's (a bounded one included), or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel was made with a serializer of another identity or for another element type, or is not a serialized channel.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the channel and its first chunk.</exception>
    public static SharedChannel<T> OpenOrCreateUnbounded<T>(SharedSegment segment, string name, SharedChannelOptions options, ISharedSerializer<T> serializer) =>
        MakeSerialized(segment, name, AsUnbounded<RecordSlot>(options), serializer, null, ChannelCore<RecordSlot>.OpenMode.OpenOrCreate);

    private static SharedChannel<T> MakeSerialized<T>(SharedSegment segment, string name, SharedChannelOptions? options, ISharedSerializer<T> serializer, Action<T>? itemDropped, ChannelCore<RecordSlot>.OpenMode mode)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ArgumentNullException.ThrowIfNull(serializer);
        var records = new RecordOwnership(new SerializedElementIdentity(serializer.Identity, typeof(T)));
        Action<RecordSlot>? dropped = itemDropped is null ? null : SerializedChannelBackend<T>.DropCallback(records, serializer, itemDropped);
        SharedRecordChannel channel = MakeRecords(segment, name, options, mode, records, dropped);
        return new SharedChannel<T>(new SerializedChannelBackend<T>(channel, serializer), segment, ownsSegment: false);
    }
}
