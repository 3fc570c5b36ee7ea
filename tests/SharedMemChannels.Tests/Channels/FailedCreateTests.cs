using System.Runtime.CompilerServices;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;
using SharedMemChannels.TestHost;

namespace SharedMemChannels.Tests.Channels;

/// <summary>A kilobyte element: the largest capacity of it is a ring beyond the largest allocation.</summary>
[InlineArray(128)]
internal struct Kilobyte
{
    private long _element;
}

/// <summary>
/// A create that fails (no room for the ring, a ring beyond the largest allocation, ...) leaves nothing:
/// the name is free, <c>Exists</c> is false, the next create with options that fit succeeds at once, and
/// the heap is where it was. Channels of every kind, topics and synchronization objects.
/// </summary>
public sealed class FailedCreateTests : SegmentTest
{
    /// <summary>A segment that cannot grow past 1 MiB, with its directory made and its heap use measured.</summary>
    private SharedSegment SmallSegment(out long usedBefore)
    {
        SharedSegment segment = NewSegment("fail", capacity: 1 << 20, max: 1 << 20);
        segment.Construct<int>("x");
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose();
        usedBefore = segment.GetHeapStatistics().UsedBytes;
        return segment;
    }

    private static void AssertNothingLeft(SharedSegment segment, long usedBefore, string name)
    {
        Assert.False(SharedChannel.Exists(segment, name));
        Assert.DoesNotContain(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == name);
        Assert.DoesNotContain(segment.GetNamedObjects(), o => o.Name.EndsWith("." + name, StringComparison.Ordinal));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_bounded_channel_without_room_for_its_ring_leaves_nothing_and_the_name_can_be_created_again()
    {
        SharedSegment segment = SmallSegment(out long usedBefore);
        Assert.Throws<OutOfSharedMemoryException>(() => SharedChannel.CreateBounded<long>(segment, "big", new SharedChannelOptions(1 << 20)));
        AssertNothingLeft(segment, usedBefore, "big");

        // The next create is not refused, and an opener does not wait for an initializer that gave up.
        using (SharedChannel<long> small = SharedChannel.CreateBounded<long>(segment, "big", new SharedChannelOptions(16)))
        {
            Assert.True(small.Writer.TryWrite(1));
            Assert.True(small.Reader.TryRead(out _));
        }

        Assert.Throws<OutOfSharedMemoryException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, "again", new SharedChannelOptions(1 << 20)));
        using SharedChannel<long> opened = SharedChannel.OpenOrCreateBounded<long>(segment, "again", new SharedChannelOptions(16));
        Assert.Equal(16, opened.Capacity);
    }

    [Fact]
    public void A_ring_beyond_the_largest_allocation_leaves_nothing()
    {
        SharedSegment segment = SmallSegment(out long usedBefore);
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedChannel.CreateBounded<Kilobyte>(segment, "huge", new SharedChannelOptions(SharedChannelOptions.MaxCapacity)));
        AssertNothingLeft(segment, usedBefore, "huge");
        using SharedChannel<Kilobyte> fits = SharedChannel.CreateBounded<Kilobyte>(segment, "huge", new SharedChannelOptions(4));
        Assert.Equal(4, fits.Capacity);
    }

    [Fact]
    public void Unbounded_record_and_serialized_channels_that_do_not_fit_leave_nothing()
    {
        SharedSegment segment = SmallSegment(out long usedBefore);
        Exception unbounded = Assert.ThrowsAny<Exception>(() => SharedChannel.CreateUnbounded<Kilobyte>(segment, "u", new SharedChannelOptions { ChunkCapacity = 4096 }));
        Assert.True(unbounded is OutOfSharedMemoryException or ArgumentOutOfRangeException, unbounded.ToString());
        AssertNothingLeft(segment, usedBefore, "u");

        Assert.Throws<OutOfSharedMemoryException>(() => SharedChannel.CreateRecords(segment, "r", new SharedChannelOptions(1 << 20)));
        AssertNothingLeft(segment, usedBefore, "r");

        Assert.Throws<OutOfSharedMemoryException>(() => SharedChannel.CreateBounded(segment, "s", new SharedChannelOptions(1 << 20), TradeSerializers.For("memorypack")));
        AssertNothingLeft(segment, usedBefore, "s");

        SharedChannel.CreateUnbounded<Kilobyte>(segment, "u", new SharedChannelOptions { ChunkCapacity = 4 }).Dispose();
        SharedChannel.CreateRecords(segment, "r", new SharedChannelOptions(8)).Dispose();
        SharedChannel.CreateBounded(segment, "s", new SharedChannelOptions(8), TradeSerializers.For("memorypack")).Dispose();
        AssertNothingLeft(segment, usedBefore, "s");
    }

    [Fact]
    public void A_topic_without_room_for_its_buffers_leaves_nothing()
    {
        SharedSegment segment = SmallSegment(out long usedBefore);
        Assert.Throws<OutOfSharedMemoryException>(() => SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 8, MinSize = 1 << 20 }));
        Assert.False(SharedTopic.Exists(segment, "t"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2, MinSize = 256 });
        Assert.True(SharedTopic.Exists(segment, "t"));
    }

    [Fact]
    public void A_synchronization_object_without_room_leaves_nothing()
    {
        SharedSegment segment = SmallSegment(out _);
        var filler = new List<ShmHandle>();
        while (segment.TryAllocate(64, out ShmHandle block))
        {
            filler.Add(block);
        }

        Assert.Throws<OutOfSharedMemoryException>(() => SharedSemaphore.Create(segment, "sem", 1));
        Assert.DoesNotContain(segment.GetNamedObjects(), o => o.Name.EndsWith(".sem", StringComparison.Ordinal));
        Assert.Throws<KeyNotFoundException>(() => SharedSemaphore.Open(segment, "sem"));
        filler.ForEach(segment.Free);
        using SharedSemaphore semaphore = SharedSemaphore.Create(segment, "sem", 1);
        Assert.True(semaphore.Wait(TimeSpan.Zero));
    }
}
