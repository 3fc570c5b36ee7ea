using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Records;
using SharedMemChannels.Segments;

namespace SharedMemChannels;

/// <summary>
/// A channel of zero-copy records: variable-size byte blocks of the segment's heap that a writer
/// allocates and fills in place (<see cref="SharedRecordWriter.Allocate"/>), writes (which hands the
/// block to the channel, no copy), and a reader in any process reads in place and disposes.
/// </summary>
/// <remarks>
/// <para>
/// Made and opened through <see cref="SharedChannel.CreateRecords"/>, <see cref="SharedChannel.OpenRecords"/>
/// and <see cref="SharedChannel.OpenOrCreateRecords"/>. Everything <see cref="SharedChannel{T}"/> does holds
/// (bounded capacity, the full modes, asynchronous waits without a thread each, completion across
/// processes, single reader / writer leases); the ring carries the records' handles.
/// </para>
/// <para>
/// Ownership of each record is tracked in shared memory (see <see cref="ShmRecord"/>): the writer owns it
/// until it is written, the channel while it is queued, the reader once read, until disposed. A drop mode
/// frees what it drops; a process that dies holding records has them reclaimed by the segment; records
/// still queued when the channel is destroyed (removed with <see cref="SharedChannel.Remove"/>, once the
/// last process detaches) are freed.
/// </para>
/// </remarks>
public sealed class SharedRecordChannel : Channel<ShmRecord>, IDisposable
{
    private readonly RecordOwnership _records;
    private readonly SharedSegment _segment;

    internal SharedRecordChannel(RecordOwnership records, SharedSegment segment)
    {
        _records = records;
        _segment = segment;
        Reader = new SharedRecordReader(records);
        Writer = new SharedRecordWriter(records);
        base.Reader = Reader;
        base.Writer = Writer;
    }

    /// <summary>This process's hold on the channel (for tests and the layers above: serialized channels).</summary>
    internal ChannelCore<RecordSlot> Core => _records.Core;

    internal RecordOwnership Records => _records;

    /// <summary>The channel's name in its segment.</summary>
    public string Name => _records.Core.Name;

    /// <summary>The segment the channel lives in.</summary>
    public SharedSegment Segment => _segment;

    /// <summary>The reading end: <see cref="ShmRecord"/>s this process owns once read, to dispose when done.</summary>
    public new SharedRecordReader Reader { get; }

    /// <summary>The writing end, which also allocates the records.</summary>
    public new SharedRecordWriter Writer { get; }

    /// <summary>The channel's capacity (records queued at most).</summary>
    public int Capacity => _records.Core.Options.IsUnbounded ? int.MaxValue : _records.Core.Options.Capacity;

    /// <summary>Whether the channel is unbounded (<see cref="SharedChannel.CreateUnboundedRecords"/>).</summary>
    public bool IsUnbounded => _records.Core.Options.IsUnbounded;

    /// <summary>What a write into the full channel does.</summary>
    public BoundedChannelFullMode FullMode => _records.Core.Options.FullMode;

    /// <summary>The largest record a writer may allocate, as stored with the channel.</summary>
    public int MaxRecordSize => _records.MaxRecordSize;

    /// <summary>
    /// Detaches this process (as <see cref="SharedChannel{T}.Dispose"/>). Records this process holds stay
    /// its own: dispose them (they are reclaimed if it exits holding them).
    /// </summary>
    public void Dispose() => _records.Core.Detach();

    /// <inheritdoc />
    public override string ToString() => IsUnbounded
        ? $"SharedRecordChannel '{Name}' in '{_segment.Name}' (unbounded, records up to {MaxRecordSize} bytes)"
        : $"SharedRecordChannel '{Name}' in '{_segment.Name}' (capacity {Capacity}, {FullMode}, records up to {MaxRecordSize} bytes)";
}

/// <summary>The writing end of a <see cref="SharedRecordChannel"/>: allocates records and writes them.</summary>
/// <remarks>
/// A write hands the record to the channel: afterwards the writer's <see cref="ShmRecord"/> is spent
/// (its <see cref="ShmRecord.Span"/> and <see cref="ShmRecord.Dispose"/> throw). A write that does not
/// happen (<see cref="TryWrite"/> false, a <see cref="WriteAsync"/> that fails or is canceled) leaves it
/// the writer's. A record the writer decides not to send is disposed.
/// </remarks>
public sealed class SharedRecordWriter : ChannelWriter<ShmRecord>
{
    private readonly RecordOwnership _records;
    private readonly ChannelCore<RecordSlot> _core;

    internal SharedRecordWriter(RecordOwnership records)
    {
        _records = records;
        _core = records.Core;
    }

    /// <summary>
    /// Allocates a record of <paramref name="size"/> bytes to fill through <see cref="ShmRecord.Span"/>, owned
    /// by this process until written. Served from the calling thread's heap cache when it can (no lock).
    /// </summary>
    /// <param name="size">1 to the channel's <see cref="SharedChannelOptions.MaxRecordSize"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is less than 1 or above the channel's largest record.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room and cannot grow.</exception>
    /// <exception cref="ObjectDisposedException">The channel was disposed.</exception>
    public ShmRecord Allocate(int size)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        if (!_records.TryAllocate(size, out ShmRecord record))
        {
            throw new OutOfSharedMemoryException($"Out of shared memory: a record of {size} bytes for channel '{_core.Name}' in segment '{_core.Segment.Name}'.{_core.Segment.DescribeMemoryLimit()}");
        }

        return record;
    }

    /// <summary>Allocates a record of <paramref name="size"/> bytes; false when the segment has no room and cannot grow.</summary>
    /// <param name="size">1 to the channel's <see cref="SharedChannelOptions.MaxRecordSize"/>.</param>
    /// <param name="record">The record, or a default one.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is less than 1 or above the channel's largest record.</exception>
    /// <exception cref="ObjectDisposedException">The channel was disposed.</exception>
    public bool TryAllocate(int size, out ShmRecord record)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _records.TryAllocate(size, out record);
    }

    /// <inheritdoc />
    public override bool TryComplete(Exception? error = null)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.TryComplete(error);
    }

    /// <summary>Writes the record if there is room (or a drop mode makes room): ownership passes to the channel.</summary>
    /// <param name="item">A record this writer allocated and still owns.</param>
    /// <returns>False when the channel is full (Wait mode) or completed: the record stays the writer's.</returns>
    /// <exception cref="ArgumentException">A default record, or one of another channel or segment.</exception>
    /// <exception cref="ObjectDisposedException">The record was written already, or disposed.</exception>
    /// <exception cref="InvalidOperationException">The record was read from a channel (not allocated by a writer).</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryWrite(ShmRecord item)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.TryWrite(_records.SlotFor(in item));
    }

    /// <inheritdoc />
    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.WaitToWriteAsync(cancellationToken);
    }

    /// <summary>Writes the record, waiting for room; ownership passes to the channel when it is written.</summary>
    /// <param name="item">A record this writer allocated and still owns.</param>
    /// <param name="cancellationToken">Cancels the wait (the record then stays the writer's).</param>
    /// <exception cref="ArgumentException">A default record, or one of another channel or segment.</exception>
    /// <exception cref="ObjectDisposedException">The record was written already, or disposed.</exception>
    /// <exception cref="InvalidOperationException">The record was read from a channel (not allocated by a writer).</exception>
    public override ValueTask WriteAsync(ShmRecord item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        RecordSlot slot = _records.SlotFor(in item);
        if (_core.TryWrite(slot))
        {
            return default;
        }

        return _core.IsCompleted ? ValueTask.FromException(_core.ClosedException()) : _core.WriteAsync(slot, cancellationToken);
    }
}

/// <summary>The reading end of a <see cref="SharedRecordChannel"/>: each record read is this process's until it disposes it.</summary>
/// <remarks>
/// Dispose every record read (a <c>using</c> in the loop body): it goes back to the heap. Records a
/// process still holds when it dies are reclaimed. <see cref="ChannelReader{T}.TryPeek"/> is not
/// supported (a peeked record would be nobody's): <see cref="CanPeek"/> is false.
/// </remarks>
public sealed class SharedRecordReader : ChannelReader<ShmRecord>, ISlotTaker<ShmRecord>
{
    private readonly RecordOwnership _records;
    private readonly ChannelCore<RecordSlot> _core;

    internal SharedRecordReader(RecordOwnership records)
    {
        _records = records;
        _core = records.Core;
    }

    /// <inheritdoc />
    public override Task Completion
    {
        get
        {
            using SegmentAttachment.Use use = _core.Segment.EnterUse();
            return _core.Completion;
        }
    }

    /// <inheritdoc />
    public override bool CanCount => true;

    /// <inheritdoc />
    public override bool CanPeek => false;

    /// <inheritdoc />
    public override int Count
    {
        get
        {
            using SegmentAttachment.Use use = _core.Segment.EnterUse();
            _core.ThrowIfDetached();
            return _core.Count;
        }
    }

    /// <summary>Takes the oldest record, which this process then owns (dispose it when done).</summary>
    /// <param name="item">The record, or a default one.</param>
    /// <returns>False when the channel is empty.</returns>
    /// <exception cref="InvalidSegmentException">The ring held a damaged record slot, or the record's header is damaged.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool TryRead(out ShmRecord item)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        if (_core.TryRead(out RecordSlot slot))
        {
            item = _records.ReaderRecord(in slot);
            return true;
        }

        item = default;
        return false;
    }

    /// <inheritdoc />
    public override ValueTask<ShmRecord> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ShmRecord>(cancellationToken);
        }

        if (TryRead(out ShmRecord item))
        {
            return new ValueTask<ShmRecord>(item);
        }

        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.IsCompleted && _core.Count == 0
            ? ValueTask.FromException<ShmRecord>(_core.ClosedException())
            : ReadPendingAsync(cancellationToken);
    }

    /// <summary>
    /// A read that must wait: the core's pending read, followed by a pooled operation of this reader
    /// (<see cref="SlotReadOperation{T}"/>) rather than a pooling async method, whose pool a
    /// <c>GetResult</c> before completion would corrupt.
    /// </summary>
    private ValueTask<ShmRecord> ReadPendingAsync(CancellationToken cancellationToken)
    {
        ValueTask<RecordSlot> inner = _core.ReadAsync(cancellationToken);
        if (inner.IsCompletedSuccessfully)
        {
            return new ValueTask<ShmRecord>(_records.ReaderRecord(inner.Result));
        }

        SlotReadOperation<ShmRecord> operation = Interlocked.Exchange(ref _cachedRead, null) ?? new SlotReadOperation<ShmRecord>(this);
        return operation.Start(inner);
    }

    private SlotReadOperation<ShmRecord>? _cachedRead;

    /// <inheritdoc />
    ShmRecord ISlotTaker<ShmRecord>.Take(in RecordSlot slot)
    {
        // Runs where the pending read resumed (a pool thread): inside a use like any operation.
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _records.ReaderRecord(in slot);
    }

    /// <inheritdoc />
    void ISlotTaker<ShmRecord>.Return(SlotReadOperation<ShmRecord> operation) => Volatile.Write(ref _cachedRead, operation);

    /// <inheritdoc />
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        using SegmentAttachment.Use use = _core.Segment.EnterUse();
        return _core.WaitToReadAsync(cancellationToken);
    }
}
