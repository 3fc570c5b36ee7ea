using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Records;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Serialization;

/// <summary>
/// A <see cref="SharedChannel{T}"/> of any <typeparamref name="T"/>: a record channel (of the serialized
/// element kind, with the serializer identity stored) and a serializer. The writer serializes each item
/// straight into a record (<see cref="RecordBufferWriter"/>) and writes the record; the reader takes a
/// record, deserializes from its bytes in place and frees it.
/// </summary>
internal sealed class SerializedChannelBackend<T> : SharedChannelBackend<T>
{
    private readonly SharedRecordChannel _channel;

    public SerializedChannelBackend(SharedRecordChannel channel, ISharedSerializer<T> serializer)
    {
        _channel = channel;
        Reader = new SerializedChannelReader<T>(channel.Records, serializer);
        Writer = new SerializedChannelWriter<T>(channel.Records, serializer);
        SerializerIdentity = serializer.Identity;
    }

    /// <summary>The record channel underneath (tests).</summary>
    public SharedRecordChannel Records => _channel;

    public override string Name => _channel.Name;

    public override SharedChannelOptions Options => _channel.Core.Options;

    public override ChannelReader<T> Reader { get; }

    public override ChannelWriter<T> Writer { get; }

    public override string? SerializerIdentity { get; }

    public override void Detach() => _channel.Dispose();

    public override void Release(in T item)
    {
        // A serialized item owns no storage once read: its record was freed by the read.
    }

    /// <summary>
    /// The drop callback of a serialized channel: deserializes the dropped record (still queued, freed by
    /// the channel once this returns) and hands the value to the user's callback.
    /// </summary>
    public static Action<RecordSlot> DropCallback(RecordOwnership records, ISharedSerializer<T> serializer, Action<T> itemDropped) =>
        slot => itemDropped(DeserializeDropped(records, serializer, in slot));

    /// <summary>The dropped record's value, read inside a use of the segment (the callback itself runs outside one).</summary>
    private static T DeserializeDropped(RecordOwnership records, ISharedSerializer<T> serializer, in RecordSlot slot)
    {
        using SegmentAttachment.Use use = records.Core.Segment.EnterUse();
        return SerializedChannelReader<T>.Deserialize(records, serializer, records.QueuedSpan(in slot));
    }
}

/// <summary>The reading end of a serialized channel: each record read is deserialized and freed at once.</summary>
internal sealed class SerializedChannelReader<T>(RecordOwnership records, ISharedSerializer<T> serializer) : ChannelReader<T>, ISlotTaker<T>
{
    private readonly ChannelCore<RecordSlot> _core = records.Core;
    private SlotReadOperation<T>? _cachedRead;

    public override Task Completion
    {
        get
        {
            using SegmentAttachment.Use use = _core.Segment.EnterUse();
            return _core.Completion;
        }
    }

    public override bool CanCount => true;

    public override int Count
    {
        get
        {
            using SegmentAttachment.Use use = _core.Segment.EnterUse();
            _core.ThrowIfDetached();
            return _core.Count;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryRead(out T item)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        if (_core.TryRead(out RecordSlot slot))
        {
            item = Take(in slot);
            return true;
        }

        item = default!;
        return false;
    }

    public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        if (_core.TryRead(out RecordSlot slot))
        {
            return new ValueTask<T>(Take(in slot));
        }

        return _core.IsCompleted && _core.Count == 0
            ? ValueTask.FromException<T>(_core.ClosedException())
            : ReadPendingAsync(cancellationToken);
    }

    private ValueTask<T> ReadPendingAsync(CancellationToken cancellationToken)
    {
        ValueTask<RecordSlot> inner = _core.ReadAsync(cancellationToken);
        if (inner.IsCompletedSuccessfully)
        {
            return new ValueTask<T>(Take(inner.Result));
        }

        SlotReadOperation<T> operation = Interlocked.Exchange(ref _cachedRead, null) ?? new SlotReadOperation<T>(this);
        return operation.Start(inner);
    }

    /// <summary>A pending read is done: its operation serves the next one (one kept; more at once are made and dropped).</summary>
    public void Return(SlotReadOperation<T> operation) => Volatile.Write(ref _cachedRead, operation);

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.WaitToReadAsync(cancellationToken);
    }

    /// <summary>The record just read, now this process's: deserialized from its bytes, then freed whatever happens.</summary>
    public T Take(in RecordSlot slot)
    {
        // Also where a pending read resumed (a pool thread): inside a use like any operation.
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        ShmRecord record = records.ReaderRecord(in slot);
        try
        {
            return Deserialize(records, serializer, record.Span);
        }
        finally
        {
            record.Dispose();
        }
    }

    /// <summary>The serializer's value; whatever it throws is reported as an <see cref="InvalidDataException"/> that names the channel.</summary>
    internal static T Deserialize(RecordOwnership records, ISharedSerializer<T> serializer, ReadOnlySpan<byte> bytes)
    {
        try
        {
            return serializer.Deserialize(bytes);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException(
                $"Channel '{records.Core.Name}': an item of {bytes.Length} bytes could not be deserialized as {typeof(T)} by '{serializer.Identity}' ({e.GetType().Name}: {e.Message}). The item was consumed; the channel goes on.",
                e);
        }
    }
}

/// <summary>The writing end of a serialized channel: each item is serialized straight into a record, which is then written.</summary>
internal sealed class SerializedChannelWriter<T>(RecordOwnership records, ISharedSerializer<T> serializer) : ChannelWriter<T>
{
    /// <summary>The smallest first record: below it, growing would cost more than the memory saved.</summary>
    private const int MinInitialSize = 64;

    private readonly ChannelCore<RecordSlot> _core = records.Core;

    private SerializedWriteOperation<T>? _cachedWrite;

    /// <summary>The last item's size and a half: where the next item's record starts (racy on purpose: a hint).</summary>
    private int _sizeEstimate = MinInitialSize;

    public override bool TryComplete(Exception? error = null)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.TryComplete(error);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryWrite(T item)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        _core.EnsureWriter();
        if (_core.IsCompleted || !_core.HasSpace)
        {
            return false; // not serialized for nothing: the record would come straight back
        }

        if (!TrySerialize(in item, out ShmRecord record))
        {
            return false; // out of shared memory
        }

        bool written;
        try
        {
            written = _core.TryWrite(records.SlotFor(in record));
        }
        catch
        {
            Abandon(record);
            throw;
        }

        if (!written)
        {
            Abandon(record); // full (a racing writer got there first) or completed: the record is still ours
        }

        return written;
    }

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.WaitToWriteAsync(cancellationToken);
    }

    public override ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        _core.EnsureWriter();
        if (_core.IsCompleted)
        {
            return ValueTask.FromException(_core.ClosedException());
        }

        if (!TrySerialize(in item, out ShmRecord record))
        {
            return ValueTask.FromException(new OutOfSharedMemoryException($"Out of shared memory: no room for an item of channel '{_core.Name}' in segment '{_core.Segment.Name}'.{_core.Segment.DescribeMemoryLimit()}"));
        }

        RecordSlot slot = records.SlotFor(in record);
        bool written;
        try
        {
            written = _core.TryWrite(slot);
        }
        catch
        {
            Abandon(record);
            throw;
        }

        if (written)
        {
            return default;
        }

        if (_core.IsCompleted)
        {
            Abandon(record);
            return ValueTask.FromException(_core.ClosedException());
        }

        return WritePendingAsync(record, slot, cancellationToken);
    }

    /// <summary>The record waits for room; a write that fails or is canceled frees it (it is still the writer's then).</summary>
    private ValueTask WritePendingAsync(ShmRecord record, RecordSlot slot, CancellationToken cancellationToken)
    {
        ValueTask inner;
        try
        {
            inner = _core.WriteAsync(slot, cancellationToken);
        }
        catch
        {
            Abandon(record);
            throw;
        }

        if (inner.IsCompletedSuccessfully)
        {
            return default;
        }

        SerializedWriteOperation<T> operation = Interlocked.Exchange(ref _cachedWrite, null) ?? new SerializedWriteOperation<T>(this);
        return operation.Start(inner, record);
    }

    /// <summary>A pending write is done: its operation serves the next one.</summary>
    internal void Return(SerializedWriteOperation<T> operation) => Volatile.Write(ref _cachedWrite, operation);

    /// <summary>
    /// Serializes <paramref name="item"/> into a new record of this process; false when the segment has no
    /// room. A serializer that throws, or an item above the channel's largest record, throws (nothing is
    /// left allocated).
    /// </summary>
    private bool TrySerialize(in T item, out ShmRecord record)
    {
        RecordBufferWriter buffer = RecordBufferWriter.Rent(records, _sizeEstimate);
        try
        {
            serializer.Serialize(buffer, in item);
        }
        catch (Exception e)
        {
            bool tooLarge = buffer.TooLarge;
            bool outOfMemory = buffer.OutOfMemory;
            buffer.Abandon();
            if (outOfMemory)
            {
                record = default;
                return false;
            }

            if (tooLarge)
            {
                // Our refusal, perhaps wrapped by the serializer: reported as the item's fault.
                throw new ArgumentException($"The item serializes to more than the largest record of channel '{_core.Name}' ({records.MaxRecordSize} bytes, SharedChannelOptions.MaxRecordSize).", nameof(item), e);
            }

            throw;
        }

        int written = buffer.Written;
        record = buffer.Finish();
        _sizeEstimate = Math.Clamp(written + (written >> 1), MinInitialSize, records.MaxRecordSize);
        return true;
    }

    internal static void Abandon(ShmRecord record)
    {
        try
        {
            record.Dispose();
        }
        catch (InvalidOperationException)
        {
            // Not the writer's any more (a drop mode took and freed it, or the segment was detached).
        }
    }
}
