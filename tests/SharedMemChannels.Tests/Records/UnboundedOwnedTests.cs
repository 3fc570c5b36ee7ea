using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>Unbounded channels whose elements own heap storage: records, and structs with ShmString / ShmVector fields.</summary>
public sealed class UnboundedOwnedTests : SegmentTest
{
    private struct Labeled
    {
        public int Id;
        public ShmString Label;
        public ShmVector<int> Values;
    }

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    private SharedSegment WarmSegment()
    {
        SharedSegment segment = NewSegment("ubown", capacity: 4 << 20, max: 64 << 20);
        SharedChannel.CreateUnboundedRecords(segment, "warm", new SharedChannelOptions { ChunkCapacity = 16 }).Dispose();
        SharedChannel.CreateUnbounded<Labeled>(segment, "warm2", new SharedChannelOptions { ChunkCapacity = 16 }).Dispose();
        return segment;
    }

    [Fact]
    public void Unbounded_records_grow_a_chain_and_the_last_reference_frees_records_and_chunks()
    {
        SharedSegment segment = WarmSegment();
        long baseline = Used(segment);
        SharedRecordChannel channel = SharedChannel.CreateUnboundedRecords(segment, "r", new SharedChannelOptions { ChunkCapacity = 64, RetainUndelivered = false });
        Assert.True(channel.IsUnbounded);
        Assert.Equal(int.MaxValue, channel.Capacity);
        for (int n = 0; n < 2_000; n++)
        {
            ShmRecord record = channel.Writer.Allocate(100 + (n % 50));
            record.Span.Fill((byte)n);
            Assert.True(channel.Writer.TryWrite(record)); // never waits, never full
        }

        Assert.Equal(2_000, channel.Reader.Count);
        for (int n = 0; n < 500; n++)
        {
            Assert.True(channel.Reader.TryRead(out ShmRecord record));
            Assert.Equal(100 + (n % 50), record.Length);
            Assert.True(record.Span.IndexOfAnyExcept((byte)n) < 0);
            record.Dispose();
        }

        Assert.True(Used(segment) > baseline);
        channel.Dispose(); // 1,500 records queued in a chain of chunks: all freed with the channel
        Assert.False(SharedChannel.Exists(segment, "r"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Elements_with_strings_queued_in_an_unbounded_channel_are_freed_with_it()
    {
        SharedSegment segment = WarmSegment();
        long baseline = Used(segment);
        SharedChannel<Labeled> channel = SharedChannel.CreateUnbounded<Labeled>(segment, "e", new SharedChannelOptions { ChunkCapacity = 32, RetainUndelivered = false });
        for (int n = 0; n < 1_000; n++)
        {
            Assert.True(channel.Writer.TryWrite(new Labeled { Id = n, Label = ShmString.Create(segment, $"label-{n}"), Values = ShmVector.Create(segment, new[] { n, n + 1 }) }));
        }

        for (int n = 0; n < 10; n++)
        {
            Assert.True(channel.Reader.TryRead(out Labeled item));
            Assert.Equal($"label-{n}", item.Label.ToString(segment));
            channel.Release(item);
        }

        channel.Dispose();
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void An_unbounded_record_channel_is_not_a_bounded_one()
    {
        SharedSegment segment = WarmSegment();
        using SharedRecordChannel channel = SharedChannel.CreateUnboundedRecords(segment, "r", new SharedChannelOptions());
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateRecords(segment, "r", new SharedChannelOptions(8)));
        using SharedRecordChannel again = SharedChannel.OpenOrCreateUnboundedRecords(segment, "r", new SharedChannelOptions());
        using SharedRecordChannel opened = SharedChannel.OpenRecords(segment, "r");
        Assert.True(opened.IsUnbounded);
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, "r"));
    }
}
