using System.Threading.Channels;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>Record channels in one process: the API, ownership misuse, drop modes, destruction, allocation.</summary>
public sealed class RecordChannelTests : SegmentTest
{
    private SharedRecordChannel NewRecords(SharedSegment segment, int capacity = 8, BoundedChannelFullMode mode = BoundedChannelFullMode.Wait, bool spsc = false, int maxRecordSize = SharedChannelOptions.DefaultMaxRecordSize, string name = "rec") =>
        Track(SharedChannel.CreateRecords(segment, name, new SharedChannelOptions(capacity) { FullMode = mode, SingleReader = spsc, SingleWriter = spsc, MaxRecordSize = maxRecordSize }));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_record_written_is_read_with_the_same_bytes_and_disposed(bool spsc)
    {
        SharedSegment segment = NewSegment("rec");
        using SharedRecordChannel channel = NewRecords(segment, spsc: spsc);
        ShmRecord record = channel.Writer.Allocate(100);
        Assert.Equal(100, record.Length);
        Assert.False(record.IsNull);
        for (int i = 0; i < 100; i++)
        {
            record.Span[i] = (byte)(i * 7);
        }

        Assert.True(channel.Writer.TryWrite(record));
        Assert.Equal(1, channel.Reader.Count);
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        Assert.Equal(100, read.Length);
        Assert.Equal(record.Handle, read.Handle);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal((byte)(i * 7), read.Span[i]);
        }

        read.Dispose();
        Assert.False(channel.Reader.TryRead(out _));
    }
}
