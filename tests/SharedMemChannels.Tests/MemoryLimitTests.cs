using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// No size the user must know: the one-line channel's segment grows to what /dev/shm holds (it stopped at
/// max(4 x its start, 64 MiB)), and every out-of-memory message names the limit that was reached and the
/// option (or system setting) that raises it.
/// </summary>
public class MemoryLimitTests : SegmentTest
{
    /// <summary>An element that owns a vector in the channel's segment (the C++ seed's elements).</summary>
    private struct Frame
    {
        public long Id;
        public ShmVector<byte> Pixels;
    }

    [Fact]
    public void The_one_line_channels_segment_grows_past_64_MiB_up_to_the_size_of_dev_shm()
    {
        string name = NewName("big");
        using SharedChannel<Frame> channel = SharedChannel.OpenOrCreateBounded<Frame>(name, new SharedChannelOptions(4));
        Track(new SegmentName(SharedChannel.SegmentPrefix + name));
        long tmpfs = new DriveInfo("/dev/shm").TotalSize;
        Assert.True(channel.Segment.MaxCapacity >= Math.Min(tmpfs, SegmentOptions.MaxSupportedCapacity) - Environment.SystemPageSize,
            $"MaxCapacity {channel.Segment.MaxCapacity}, /dev/shm {tmpfs}");

        // Three frames of 30 MiB: 90 MiB of storage, more than the old 64 MiB limit.
        SharedSegment segment = channel.Segment;
        for (int i = 0; i < 3; i++)
        {
            ShmVector<byte> pixels = ShmVector.Create<byte>(segment, new byte[30 << 20]);
            Assert.True(channel.Writer.TryWrite(new Frame { Id = i, Pixels = pixels }));
        }

        Assert.True(segment.Capacity > 64L << 20);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(channel.Reader.TryRead(out Frame frame));
            Assert.Equal(30 << 20, frame.Pixels.GetCount(segment));
            channel.Release(frame);
        }
    }

    [Fact]
    public void Out_of_memory_at_MaxCapacity_names_the_limit_and_the_option_that_raises_it()
    {
        SharedSegment segment = NewSegment("limit", capacity: 256 * 1024, max: 1 << 20);
        OutOfSharedMemoryException e = Assert.Throws<OutOfSharedMemoryException>(() => segment.Allocate(2 << 20));
        Assert.Contains("MaxCapacity of 1048576 bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("SegmentOptions.MaxCapacity", e.Message, StringComparison.Ordinal);

        // The same words whatever ran out: a channel's ring, a container, a topic's buffers.
        e = Assert.Throws<OutOfSharedMemoryException>(() => SharedChannel.CreateBounded<long>(segment, "huge", new SharedChannelOptions(1 << 20)).Dispose());
        Assert.Contains("SegmentOptions.MaxCapacity", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<OutOfSharedMemoryException>(() => ShmVector.Create<byte>(segment, new byte[2 << 20]));
        Assert.Contains("SegmentOptions.MaxCapacity", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<OutOfSharedMemoryException>(() => SharedTopic.Create(segment, "wide", new SharedTopicOptions { BufferCount = 4, MinSize = 1 << 20 }).Dispose());
        Assert.Contains("SegmentOptions.MaxCapacity", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Removes a segment name when the test ends (the one-line form's segment).</summary>
    private sealed class SegmentName(string name) : IDisposable
    {
        public void Dispose() => SharedSegment.Remove(name);
    }
}
