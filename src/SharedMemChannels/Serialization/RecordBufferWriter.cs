using System.Buffers;
using SharedMemChannels.Records;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Serialization;

/// <summary>
/// The <see cref="IBufferWriter{T}"/> a serialized channel's writer hands to the serializer: it writes
/// straight into a record of the segment's heap. The record is allocated at the first request (at the
/// channel's size estimate, or what the serializer asks for if more) and, when the serializer outgrows
/// it, replaced by a larger one (the bytes written so far copied over, the old record freed), up to the
/// channel's <see cref="SharedChannelOptions.MaxRecordSize"/>. One instance per thread, reused for every
/// item (no allocation per item); <see cref="GetMemory"/> hands out a <see cref="Memory{T}"/> of its own
/// reused <see cref="MemoryManager{T}"/> over the record.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The memory manager owns nothing to dispose: it is a view of the record being filled.")]
internal sealed class RecordBufferWriter : IBufferWriter<byte>
{
    [ThreadStatic]
    private static RecordBufferWriter? t_cached;

    private readonly RecordMemory _manager = new();
    private RecordOwnership? _records;
    private SegmentMemory? _memory;
    private ShmRecord _record;
    private long _payload;
    private int _capacity;
    private int _written;
    private int _initialSize;

    /// <summary>Set when the serializer needed more than the channel's largest record.</summary>
    public bool TooLarge { get; private set; }

    /// <summary>Set when the segment had no room for the record.</summary>
    public bool OutOfMemory { get; private set; }

    /// <summary>The bytes written so far.</summary>
    public int Written => _written;

    /// <summary>This thread's writer, ready to fill a record of <paramref name="records"/>' channel; give it back with <see cref="Finish"/> or <see cref="Abandon"/>.</summary>
    public static RecordBufferWriter Rent(RecordOwnership records, int initialSize)
    {
        RecordBufferWriter writer = t_cached ?? new RecordBufferWriter();
        t_cached = null; // a serializer that writes to another serialized channel from inside Serialize gets its own
        writer._records = records;
        writer._memory = records.Memory;
        writer._initialSize = initialSize;
        writer._written = 0;
        writer._capacity = 0;
        writer.TooLarge = false;
        writer.OutOfMemory = false;
        return writer;
    }

    /// <summary>The filled record, cut to the bytes written (the writer's to write to the channel); the writer goes back to the thread.</summary>
    /// <exception cref="InvalidOperationException">The serializer wrote nothing.</exception>
    public ShmRecord Finish()
    {
        if (_written == 0)
        {
            Abandon();
            throw new InvalidOperationException("The serializer wrote no bytes: a serialized item takes at least one byte.");
        }

        ShmRecord record = _written == _record.Length ? _record : _records!.Shrink(_record, _written);
        Return();
        return record;
    }

    /// <summary>Frees the record being filled (the serializer failed) and gives the writer back to the thread.</summary>
    public void Abandon()
    {
        if (!_record.IsNull)
        {
            try
            {
                _record.Dispose();
            }
            catch (InvalidOperationException)
            {
                // Not ours any more (its segment detached meanwhile): nothing to free here.
            }
        }

        Return();
    }

    private void Return()
    {
        _record = default;
        _records = null;
        _memory = null;
        _capacity = 0;
        _manager.Reset(null, 0, 0); // a Memory<byte> the serializer kept now fails instead of writing into a record handed over
        t_cached = this;
    }

    /// <inheritdoc />
    public void Advance(int count)
    {
        if ((uint)count > (uint)(_capacity - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Advance past the buffer: {_capacity - _written} bytes were available.");
        }

        _written += count;
    }

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _memory!.Span(_payload + _written, _capacity - _written);
    }

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _manager.Slice(_written, _capacity - _written);
    }

    private void Ensure(int sizeHint)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        if (_records is null)
        {
            throw new InvalidOperationException("This buffer writer was used after its Serialize call returned.");
        }

        int need = Math.Max(sizeHint, 1);
        if (_capacity - _written < need)
        {
            Grow(need);
        }
    }

    /// <summary>A record with room for <paramref name="need"/> more bytes: the first one, or a larger one with the bytes so far.</summary>
    private void Grow(int need)
    {
        RecordOwnership records = _records!;
        int max = records.MaxRecordSize;
        long wanted = (long)_written + need;
        if (wanted > max)
        {
            TooLarge = true;
            throw new ArgumentException($"The item serializes to more than the channel's largest record ({max} bytes, SharedChannelOptions.MaxRecordSize).");
        }

        long size = _record.IsNull ? Math.Max(_initialSize, wanted) : Math.Max(wanted, (long)_capacity * 2);
        int length = (int)Math.Min(size, max);
        if (!records.TryAllocate(length, out ShmRecord next))
        {
            OutOfMemory = true;
            throw new OutOfSharedMemoryException($"Out of shared memory: a record of {length} bytes for channel '{records.Core.Name}' in segment '{records.Core.Segment.Name}'.{records.Core.Segment.DescribeMemoryLimit()}");
        }

        long payload = records.PayloadOffset(in next);
        if (_written > 0)
        {
            _memory!.Span(_payload, _written).CopyTo(_memory.Span(payload, _written));
        }

        if (!_record.IsNull)
        {
            _record.Dispose();
        }

        _record = next;
        _payload = payload;
        _capacity = length;
        _manager.Reset(_memory, payload, length);
    }

    /// <summary>A <see cref="MemoryManager{T}"/> over the record being filled (reused: one per writer).</summary>
    private sealed class RecordMemory : MemoryManager<byte>
    {
        private SegmentMemory? _memory;
        private long _offset;
        private int _length;

        public void Reset(SegmentMemory? memory, long offset, int length)
        {
            _memory = memory;
            _offset = offset;
            _length = length;
        }

        public Memory<byte> Slice(int start, int length) => CreateMemory(start, length);

        public override Span<byte> GetSpan() => _memory is null ? [] : _memory.Span(_offset, _length);

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            if (_memory is null || (uint)elementIndex >= (uint)_length)
            {
                throw new ArgumentOutOfRangeException(nameof(elementIndex));
            }

            return _memory.Pin(_offset + elementIndex, _length - elementIndex);
        }

        public override void Unpin()
        {
            // Shared memory does not move.
        }

        protected override void Dispose(bool disposing)
        {
            // Nothing owned: the record is the buffer writer's.
        }
    }
}
