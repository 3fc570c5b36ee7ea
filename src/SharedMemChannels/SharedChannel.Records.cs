using SharedMemChannels.Channels;
using SharedMemChannels.Records;

namespace SharedMemChannels;

/// <content>Record channels: zero-copy variable-size records (<see cref="SharedRecordChannel"/>).</content>
public static partial class SharedChannel
{
    /// <summary>Creates the record channel <paramref name="name"/> in <paramref name="segment"/>; fails if a channel of that name exists.</summary>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Capacity (records queued at most), full mode, single reader / writer, waiting, <see cref="SharedChannelOptions.MaxRecordSize"/>.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedRecordChannel CreateRecords(SharedSegment segment, string name, SharedChannelOptions options) =>
        MakeRecords(segment, name, options, ChannelCore<RecordSlot>.OpenMode.Create, ChannelControl.ElementKindRecords);

    /// <summary>Opens the existing record channel <paramref name="name"/> of <paramref name="segment"/>, with the options it was made with.</summary>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="KeyNotFoundException">There is no channel of that name.</exception>
    /// <exception cref="InvalidCastException">The channel is not a record channel.</exception>
    /// <exception cref="InvalidOperationException">The channel was removed.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish making it in time.</exception>
    public static SharedRecordChannel OpenRecords(SharedSegment segment, string name) =>
        MakeRecords(segment, name, null, ChannelCore<RecordSlot>.OpenMode.Open, ChannelControl.ElementKindRecords);

    /// <summary>
    /// Opens the record channel <paramref name="name"/> of <paramref name="segment"/>, or creates it: processes
    /// may start in any order, exactly one creates. Options that disagree with those the channel was made
    /// with (<see cref="SharedChannelOptions.MaxRecordSize"/> included) are an <see cref="ArgumentException"/>.
    /// </summary>
    /// <param name="segment">The segment that holds the channel.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel is not a record channel.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the ring.</exception>
    public static SharedRecordChannel OpenOrCreateRecords(SharedSegment segment, string name, SharedChannelOptions options) =>
        MakeRecords(segment, name, options, ChannelCore<RecordSlot>.OpenMode.OpenOrCreate, ChannelControl.ElementKindRecords);

    /// <summary>
    /// Creates the unbounded record channel <paramref name="name"/> in <paramref name="segment"/>: its queue
    /// of records is a chain of chunks taken from the heap as it grows (see
    /// <see cref="CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>); writes never wait,
    /// and at the segment's <see cref="SegmentOptions.MaxCapacity"/> <c>TryWrite</c> is false and
    /// <c>WriteAsync</c> throws <see cref="OutOfSharedMemoryException"/>.
    /// </summary>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="MaxNameLength"/> characters.</param>
    /// <param name="options">Chunk capacity, single reader / writer, waiting, <see cref="SharedChannelOptions.MaxRecordSize"/>; a Capacity or FullMode given is an <see cref="ArgumentException"/>.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidOperationException">A channel of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the chain.</exception>
    public static SharedRecordChannel CreateUnboundedRecords(SharedSegment segment, string name, SharedChannelOptions options) =>
        MakeRecords(segment, name, AsUnbounded<RecordSlot>(options), ChannelCore<RecordSlot>.OpenMode.Create, ChannelControl.ElementKindRecords);

    /// <summary>Opens the unbounded record channel <paramref name="name"/>, or creates it (see <see cref="CreateUnboundedRecords"/>).</summary>
    /// <param name="segment">The segment that holds the channel and its records.</param>
    /// <param name="name">The channel's name.</param>
    /// <param name="options">The options to create with, and to check an existing channel against.</param>
    /// <exception cref="ArgumentException">The name is not valid, or the options disagree with the existing channel's, or the options give a setting this kind of channel has no use for (see <see cref="SharedChannelOptions"/>).</exception>
    /// <exception cref="InvalidCastException">The channel is not a record channel.</exception>
    public static SharedRecordChannel OpenOrCreateUnboundedRecords(SharedSegment segment, string name, SharedChannelOptions options) =>
        MakeRecords(segment, name, AsUnbounded<RecordSlot>(options), ChannelCore<RecordSlot>.OpenMode.OpenOrCreate, ChannelControl.ElementKindRecords);

    /// <summary>
    /// A record channel of the given element kind: <see cref="ChannelControl.ElementKindRecords"/> for the
    /// public record channels, <see cref="ChannelControl.ElementKindSerialized"/> for the channels of
    /// serialized elements built on them (so that neither opens as the other).
    /// </summary>
    internal static SharedRecordChannel MakeRecords(SharedSegment segment, string name, SharedChannelOptions? options, ChannelCore<RecordSlot>.OpenMode mode, int elementKind) =>
        MakeRecords(segment, name, options, mode, new RecordOwnership(elementKind), itemDropped: null);

    /// <summary>A record channel with the given ownership (a serialized channel's carries its serializer identity) and drop callback.</summary>
    internal static SharedRecordChannel MakeRecords(SharedSegment segment, string name, SharedChannelOptions? options, ChannelCore<RecordSlot>.OpenMode mode, RecordOwnership records, Action<RecordSlot>? itemDropped)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ValidateName(name);
        if (mode != ChannelCore<RecordSlot>.OpenMode.Open)
        {
            ArgumentNullException.ThrowIfNull(options);
            SharedChannelOptions.ThrowIfNotApplicable(options, records: true);
        }

        segment.ThrowIfDisposed();
        ChannelCore<RecordSlot>.Open(segment.Attachment, name, options, itemDropped, mode, records);
        return new SharedRecordChannel(records, segment);
    }
}
