using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Records;
using SharedMemChannels.Rings;
using SharedMemChannels.Tests.Infrastructure;

#pragma warning disable CA2012 // Use ValueTasks correctly: pending operations are held to check they are pending.

namespace SharedMemChannels.Tests.Records;

/// <summary>
/// Record channels in one process: the API, sizes, ownership misuse (each case an exception), damaged
/// slots and headers, drop modes and destruction freeing what they must, and no allocation in steady state.
/// </summary>
public sealed class RecordChannelTests : SegmentTest
{
    private SharedRecordChannel NewRecords(SharedSegment segment, int capacity = 8, BoundedChannelFullMode mode = BoundedChannelFullMode.Wait, bool spsc = false, int maxRecordSize = SharedChannelOptions.DefaultMaxRecordSize, string name = "rec") =>
        Track(SharedChannel.CreateRecords(segment, name, new SharedChannelOptions(capacity) { FullMode = mode, SingleReader = spsc, SingleWriter = spsc, MaxRecordSize = maxRecordSize }));

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    /// <summary>A segment whose directory table exists already (the first channel makes it), so that a destroyed channel leaves the used bytes where they were.</summary>
    private SharedSegment NewWarmSegment(string tag)
    {
        SharedSegment segment = NewSegment(tag);
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose();
        Assert.False(SharedChannel.Exists(segment, "warm")); // the last reference went with it
        return segment;
    }

    private static ShmRecord Filled(SharedRecordChannel channel, int size, byte seed)
    {
        ShmRecord record = channel.Writer.Allocate(size);
        Span<byte> span = record.Span;
        for (int i = 0; i < span.Length; i++)
        {
            span[i] = (byte)(seed + i);
        }

        return record;
    }

    private static void AssertFilled(ShmRecord record, int size, byte seed)
    {
        Assert.Equal(size, record.Length);
        ReadOnlySpan<byte> span = record.Span;
        Assert.Equal(size, span.Length);
        for (int i = 0; i < span.Length; i++)
        {
            Assert.Equal((byte)(seed + i), span[i]);
        }
    }

    // ---------------------------------------------------------------- the API

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_record_written_is_read_with_the_same_bytes_and_disposed(bool spsc)
    {
        SharedSegment segment = NewSegment("rec");
        SharedRecordChannel channel = NewRecords(segment, spsc: spsc);
        long baseline = Used(segment);
        ShmRecord record = Filled(channel, 100, 3);
        Assert.False(record.IsNull);
        Assert.True(channel.Writer.TryWrite(record));
        Assert.Equal(1, channel.Reader.Count);
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        Assert.Equal(record.Handle, read.Handle);
        AssertFilled(read, 100, 3);
        read.Dispose();
        Assert.False(channel.Reader.TryRead(out ShmRecord none));
        Assert.True(none.IsNull);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task ReadAsync_waits_for_a_record_and_WriteAsync_waits_for_room()
    {
        SharedSegment segment = NewSegment("rec");
        SharedRecordChannel channel = NewRecords(segment, capacity: 1);
        ValueTask<ShmRecord> pending = channel.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        await channel.Writer.WriteAsync(Filled(channel, 10, 1));
        using (ShmRecord first = await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(30)))
        {
            AssertFilled(first, 10, 1);
        }

        await channel.Writer.WriteAsync(Filled(channel, 20, 2));
        ShmRecord waiting = Filled(channel, 30, 3);
        ValueTask write = channel.Writer.WriteAsync(waiting);
        Assert.False(write.IsCompleted);
        Assert.Equal(30, waiting.Span.Length); // not written yet: still the writer's
        using (ShmRecord second = await channel.Reader.ReadAsync())
        {
            AssertFilled(second, 20, 2);
        }

        await write.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Throws<ObjectDisposedException>(() => waiting.Span.Length);
        channel.Writer.Complete();
        int count = 0;
        await foreach (ShmRecord record in channel.Reader.ReadAllAsync())
        {
            using (record)
            {
                AssertFilled(record, 30, 3);
                count++;
            }
        }

        Assert.Equal(1, count);
        await channel.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Sizes_out_of_range_are_refused_and_the_limit_is_stored_with_the_channel()
    {
        SharedSegment segment = NewSegment("rec", capacity: 4 << 20);
        SharedRecordChannel channel = NewRecords(segment, maxRecordSize: 4096);
        Assert.Equal(4096, channel.MaxRecordSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => channel.Writer.Allocate(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => channel.Writer.Allocate(-5));
        Assert.Throws<ArgumentOutOfRangeException>(() => channel.Writer.Allocate(4097));
        Assert.Throws<ArgumentOutOfRangeException>(() => channel.Writer.TryAllocate(4097, out _));
        using (ShmRecord largest = channel.Writer.Allocate(4096))
        {
            Assert.Equal(4096, largest.Span.Length);
        }

        using SharedRecordChannel opened = Track(SharedChannel.OpenRecords(segment, "rec"));
        Assert.Equal(4096, opened.MaxRecordSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => opened.Writer.Allocate(4097));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateRecords(segment, "rec", new SharedChannelOptions(8) { MaxRecordSize = 8192 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedChannelOptions(8) { MaxRecordSize = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedChannelOptions(8) { MaxRecordSize = SharedChannelOptions.MaxRecordSizeLimit + 1 });
        Assert.Equal(1 << 20, new SharedChannelOptions(1).MaxRecordSize);
    }

    [Fact]
    public void Out_of_memory_is_false_from_TryAllocate_and_an_exception_from_Allocate()
    {
        SharedSegment segment = NewSegment("oom", capacity: 1 << 20, max: 1 << 20);
        SharedRecordChannel channel = NewRecords(segment, maxRecordSize: 64 << 10);
        var held = new List<ShmRecord>();
        while (channel.Writer.TryAllocate(64 << 10, out ShmRecord record))
        {
            held.Add(record);
            Assert.True(held.Count < 100, "a 1 MiB segment held 100 records of 64 KiB");
        }

        Assert.NotEmpty(held);
        Assert.Throws<OutOfSharedMemoryException>(() => channel.Writer.Allocate(64 << 10));
        foreach (ShmRecord record in held)
        {
            record.Dispose();
        }

        using ShmRecord again = channel.Writer.Allocate(64 << 10);
        Assert.Equal(64 << 10, again.Length);
    }

    [Fact]
    public void A_record_channel_and_a_channel_of_structs_do_not_open_as_each_other()
    {
        SharedSegment segment = NewSegment("kind");
        NewRecords(segment, name: "records");
        Track(SharedChannel.CreateBounded<RecordSlot>(segment, "structs", new SharedChannelOptions(4)));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<RecordSlot>(segment, "records"));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, "records"));
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenRecords(segment, "structs"));
    }

    [Fact]
    public void A_writer_record_shrunk_by_a_layer_above_is_read_with_its_new_length()
    {
        SharedSegment segment = NewSegment("shrink");
        SharedRecordChannel channel = NewRecords(segment);
        ShmRecord big = Filled(channel, 1000, 4);
        ShmRecord small = channel.Records.Shrink(big, 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => channel.Records.Shrink(big, 1001));
        Assert.True(channel.Writer.TryWrite(small));
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        AssertFilled(read, 10, 4);
        Assert.Throws<InvalidOperationException>(() => channel.Records.Shrink(read, 5));
        read.Dispose();
    }

    // ---------------------------------------------------------------- ownership misuse

    [Fact]
    public void A_record_handed_over_can_no_longer_be_used_written_or_disposed_by_its_writer()
    {
        SharedSegment segment = NewSegment("misuse");
        SharedRecordChannel channel = NewRecords(segment);
        ShmRecord record = Filled(channel, 64, 9);
        ShmRecord copy = record;
        Assert.True(channel.Writer.TryWrite(record));
        Assert.Throws<ObjectDisposedException>(() => record.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => copy.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => channel.Writer.TryWrite(record));
        Assert.Throws<ObjectDisposedException>(() => channel.Writer.WriteAsync(copy));
        Assert.Throws<ObjectDisposedException>(record.Dispose);
        Assert.Equal(1, channel.Reader.Count); // the failed attempts queued nothing

        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        Assert.Throws<ObjectDisposedException>(() => record.Span.Length); // the reader's now, not the writer's
        Assert.Throws<InvalidOperationException>(() => channel.Writer.TryWrite(read)); // a read record is not written on
        AssertFilled(read, 64, 9);
        ShmRecord readCopy = read;
        read.Dispose();
        Assert.Throws<ObjectDisposedException>(read.Dispose);
        Assert.Throws<ObjectDisposedException>(readCopy.Dispose);
        Assert.Throws<ObjectDisposedException>(() => read.Span.Length);
    }

    [Fact]
    public void A_record_outliving_its_segment_throws_instead_of_touching_the_released_mapping()
    {
        SharedSegment segment = NewSegment("gone");
        SharedRecordChannel channel = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(4));
        ShmRecord record = channel.Writer.Allocate(16);
        channel.Dispose();
        segment.Dispose();
        Assert.Throws<ObjectDisposedException>(() => record.Span.Length);
        Assert.Throws<ObjectDisposedException>(record.Dispose);
    }

    [Fact]
    public void A_record_the_writer_abandons_is_freed_once()
    {
        SharedSegment segment = NewSegment("abandon");
        SharedRecordChannel channel = NewRecords(segment);
        long baseline = Used(segment);
        ShmRecord record = channel.Writer.Allocate(500);
        Assert.True(Used(segment) > baseline);
        record.Dispose();
        Assert.Equal(baseline, Used(segment));
        Assert.Throws<ObjectDisposedException>(record.Dispose);
        Assert.Throws<ObjectDisposedException>(() => channel.Writer.TryWrite(record));
        Assert.Equal(0, channel.Reader.Count);
    }

    [Fact]
    public void Records_of_another_channel_or_segment_and_default_records_are_refused()
    {
        SharedSegment segment = NewSegment("foreign");
        SharedSegment other = NewSegment("other");
        SharedRecordChannel channel = NewRecords(segment, name: "a");
        SharedRecordChannel sibling = NewRecords(segment, name: "b");
        SharedRecordChannel elsewhere = NewRecords(other, name: "a");
        using ShmRecord ofSibling = sibling.Writer.Allocate(10);
        using ShmRecord ofElsewhere = elsewhere.Writer.Allocate(10);
        Assert.Throws<ArgumentException>(() => channel.Writer.TryWrite(ofSibling));
        Assert.Throws<ArgumentException>(() => channel.Writer.TryWrite(ofElsewhere));
        Assert.Throws<ArgumentException>(() => channel.Writer.TryWrite(default));
        Assert.Throws<ArgumentException>(() => channel.Writer.WriteAsync(default));
        Assert.Throws<InvalidOperationException>(() => default(ShmRecord).Span.Length);
        default(ShmRecord).Dispose(); // nothing to free
        Assert.Equal(0, channel.Reader.Count);
        Assert.Equal(10, ofSibling.Span.Length); // still its writer's

        // The same channel opened twice in one process is one channel: its records go through either.
        using SharedRecordChannel again = Track(SharedChannel.OpenRecords(segment, "a"));
        ShmRecord record = again.Writer.Allocate(5);
        Assert.True(channel.Writer.TryWrite(record));
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        read.Dispose();
    }

    [Fact]
    public void A_write_the_channel_refuses_leaves_the_record_with_its_writer()
    {
        SharedSegment segment = NewSegment("full");
        SharedRecordChannel channel = NewRecords(segment, capacity: 1);
        Assert.True(channel.Writer.TryWrite(Filled(channel, 8, 1)));
        ShmRecord refused = Filled(channel, 8, 2);
        Assert.False(channel.Writer.TryWrite(refused));
        AssertFilled(refused, 8, 2);
        channel.Writer.Complete();
        Assert.False(channel.Writer.TryWrite(refused));
        AssertFilled(refused, 8, 2);
        refused.Dispose();
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        read.Dispose();
    }

    // ---------------------------------------------------------------- damage

    public static TheoryData<string> Damages => new() { "handle", "stale-handle", "not-a-record", "slot-length", "header-length", "header-magic", "header-channel", "header-state" };

    [Theory]
    [MemberData(nameof(Damages))]
    public void A_damaged_slot_or_record_header_is_an_InvalidSegmentException(string damage)
    {
        SharedSegment segment = NewSegment("damage");
        SharedRecordChannel channel = NewRecords(segment, spsc: true);
        ShmRecord record = Filled(channel, 64, 5);
        Assert.True(channel.Writer.TryWrite(record));
        var memory = segment.Attachment.Memory;
        RingHeader ring = channel.Core.Header;
        long slot = ring.SlotAt(0); // SPSC: the first record is in slot 0
        ref RecordSlot element = ref memory.Ref<RecordSlot>(slot);
        long header = segment.Attachment.Heap.GetPayloadOffset(record.Handle, out _, out _);
        ref RecordHeader recordHeader = ref memory.Ref<RecordHeader>(header);
        switch (damage)
        {
            case "handle":
                element.Handle = ShmHandle.FromValue(0xDEAD_BEEF_0000_1234);
                break;
            case "stale-handle":
                element.Handle = ShmHandle.FromValue(element.Handle.Value ^ 1);
                break;
            case "not-a-record":
                element.Handle = segment.Allocate(128);
                break;
            case "slot-length":
                element.Length = 1 << 30;
                break;
            case "header-length":
                recordHeader.Length = 1 << 20;
                break;
            case "header-magic":
                recordHeader.Magic = 0;
                break;
            case "header-channel":
                recordHeader.ChannelId ^= 0xFF;
                break;
            case "header-state":
                recordHeader.Ownership = RecordHeader.Word(RecordHeader.TicketOf(recordHeader.Ownership), RecordHeader.StateReader);
                break;
        }

        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));
    }

    // ---------------------------------------------------------------- drops and destruction

    [Theory]
    [InlineData(BoundedChannelFullMode.DropOldest, false)]
    [InlineData(BoundedChannelFullMode.DropNewest, false)]
    [InlineData(BoundedChannelFullMode.DropWrite, false)]
    [InlineData(BoundedChannelFullMode.DropWrite, true)]
    public void Drop_modes_free_the_records_they_drop(BoundedChannelFullMode mode, bool spsc)
    {
        SharedSegment segment = NewSegment("drop");
        SharedRecordChannel channel = NewRecords(segment, capacity: 2, mode: mode, spsc: spsc);
        long baseline = Used(segment);
        for (byte n = 0; n < 6; n++)
        {
            ShmRecord record = Filled(channel, 256, n);
            Assert.True(channel.Writer.TryWrite(record));
            Assert.Throws<ObjectDisposedException>(() => record.Span.Length); // written or dropped: the writer's no more
        }

        Assert.Equal(2, channel.Reader.Count);
        long twoRecords = Used(segment) - baseline;
        Assert.True(twoRecords > 512 && twoRecords < 1024, $"{twoRecords} bytes held for two records of 256");
        byte[] expected = mode switch
        {
            BoundedChannelFullMode.DropOldest => [4, 5],
            BoundedChannelFullMode.DropNewest => [0, 5],
            _ => [0, 1],
        };
        foreach (byte seed in expected)
        {
            Assert.True(channel.Reader.TryRead(out ShmRecord read));
            AssertFilled(read, 256, seed);
            read.Dispose();
        }

        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Records_queued_when_the_channel_is_destroyed_are_freed(bool spsc, bool removeWhileAttached)
    {
        SharedSegment segment = NewWarmSegment("destroy");
        long baseline = Used(segment);
        SharedRecordChannel channel = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(16) { SingleReader = spsc, SingleWriter = spsc, RetainUndelivered = removeWhileAttached });
        for (byte n = 0; n < 10; n++)
        {
            Assert.True(channel.Writer.TryWrite(Filled(channel, 1000 * (n + 1), n)));
        }

        // Reads leave the ring's cells in every state: some read (and freed), the rest queued.
        for (int n = 0; n < 3; n++)
        {
            Assert.True(channel.Reader.TryRead(out ShmRecord read));
            read.Dispose();
        }

        ShmRecord held = channel.Writer.Allocate(77); // the writer's: destruction leaves it alone
        if (removeWhileAttached)
        {
            Assert.True(SharedChannel.Remove(segment, "rec"));
            Assert.True(Used(segment) > baseline);
            channel.Dispose();
        }
        else
        {
            channel.Dispose(); // the last reference: the channel goes with what it holds (RaftLib's rule, asked for)
            Assert.False(SharedChannel.Remove(segment, "rec"));
        }

        Assert.False(SharedChannel.Exists(segment, "rec"));
        Assert.Equal(77, held.Span.Length);
        held.Dispose();
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void A_record_left_between_handover_and_publish_is_freed_when_the_channel_is_destroyed()
    {
        SharedSegment segment = NewWarmSegment("window");
        long baseline = Used(segment);
        SharedRecordChannel channel = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(4));
        ShmRecord record = channel.Writer.Allocate(300);

        // What a writer killed between the two steps of a write leaves: queued and the segment's, in no ring.
        channel.Records.HandOver(channel.Records.SlotFor(in record));
        Assert.True(segment.GetOwnership(record.Handle) == ShmOwnership.Segment);
        Assert.Equal(0, channel.Reader.Count);
        channel.Dispose(); // the last reference: the channel goes with what it holds
        Assert.False(SharedChannel.Remove(segment, "rec"));
        Assert.Equal(baseline, Used(segment));
    }

    // ---------------------------------------------------------------- allocation

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Allocating_writing_reading_and_disposing_records_allocates_nothing_in_steady_state(bool spsc)
    {
        SharedSegment segment = NewSegment("alloc", capacity: 4 << 20);
        SharedRecordChannel channel = NewRecords(segment, capacity: 8, spsc: spsc);
        long sum = Churn(channel, 1000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        sum += Churn(channel, 20_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sum > 0);
    }

    private static long Churn(SharedRecordChannel channel, int rounds)
    {
        long sum = 0;
        for (int i = 0; i < rounds; i++)
        {
            ShmRecord record = channel.Writer.Allocate(64 + (i % 4 * 1000));
            record.Span[0] = (byte)i;
            record.Span[^1] = 1;
            if (!channel.Writer.TryWrite(record) || !channel.Reader.TryRead(out ShmRecord read))
            {
                return -1;
            }

            sum += read.Span[0] + read.Span[^1];
            read.Dispose();
        }

        return sum;
    }

    [Fact]
    public async Task A_pending_record_read_may_be_awaited_once_and_its_operation_serves_the_next()
    {
        SharedSegment segment = NewSegment("pending");
        SharedRecordChannel channel = NewRecords(segment);
        for (int round = 0; round < 3; round++)
        {
            ValueTask<ShmRecord> read = channel.Reader.ReadAsync();
            Assert.False(read.IsCompleted);
            Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
            Assert.True(channel.Writer.TryWrite(Filled(channel, 10 + round, (byte)round)));
            ShmRecord record = await read;
            Assert.Equal(10 + round, record.Length);
            Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
            record.Dispose();
        }
    }
}
