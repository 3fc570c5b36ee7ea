using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>
/// Prioritized channels whose elements own heap storage (<see cref="ShmString"/> / <see cref="ShmVector{T}"/>
/// fields): the storage of items still in the binary heap is freed exactly once when the channel goes,
/// whether it is removed, let go by its last reference, or handed over item by item.
/// </summary>
public sealed class PrioritizedOwnedTests : SegmentTest
{
    private struct Job
    {
        public long Priority;
        public ShmString Label;
        public ShmVector<int> Values;
    }

    private static readonly IComparer<Job> ByPriority = Comparer<Job>.Create((a, b) => a.Priority.CompareTo(b.Priority));

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    /// <summary>A segment in which a channel of the kind was made and destroyed once: the directory keeps what it grew by.</summary>
    private SharedSegment WarmSegment()
    {
        SharedSegment segment = NewSegment("prown", capacity: 4 << 20, max: 64 << 20);
        SharedChannel.CreateUnboundedPrioritized(segment, "warm", new SharedChannelOptions { ChunkCapacity = 4 }, ByPriority).Dispose();
        return segment;
    }

    private static void WriteJobs(SharedSegment segment, SharedChannel<Job> channel, int count)
    {
        for (int n = 0; n < count; n++)
        {
            // Priorities out of order, so the heap moves items (and their handles) around as it sorts them.
            long priority = (n * 37) % count;
            Assert.True(channel.Writer.TryWrite(new Job
            {
                Priority = priority,
                Label = ShmString.Create(segment, $"job-{priority}-{new string('x', n % 40)}"),
                Values = ShmVector.Create(segment, new[] { n, n + 1, n + 2 }),
            }));
        }
    }

    [Fact]
    public void Items_with_strings_queued_in_a_removed_prioritized_channel_are_freed_with_it()
    {
        SharedSegment segment = WarmSegment();
        long baseline = Used(segment);
        SharedChannel<Job> channel = Track(SharedChannel.CreateUnboundedPrioritized(segment, "jobs", new SharedChannelOptions { ChunkCapacity = 4 }, ByPriority));
        WriteJobs(segment, channel, 100);
        Assert.Equal(100, channel.Reader.Count);
        Assert.True(Used(segment) > baseline + (100 * 16), "the items' strings and vectors are in the heap");

        // A few taken first: what a reader holds is its own until it releases it.
        for (int n = 0; n < 3; n++)
        {
            Assert.True(channel.Reader.TryRead(out Job job));
            Assert.Equal(n, job.Priority);
            Assert.StartsWith($"job-{n}-", job.Label.ToString(segment), StringComparison.Ordinal);
            Assert.Equal(3, job.Values.GetCount(segment));
            channel.Release(job);
        }

        Assert.True(SharedChannel.Remove(segment, "jobs"));
        Assert.False(SharedChannel.Exists(segment, "jobs"));
        channel.Dispose();
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void The_last_reference_of_a_prioritized_channel_that_keeps_nothing_frees_the_items_storage()
    {
        SharedSegment segment = WarmSegment();
        long baseline = Used(segment);
        SharedChannel<Job> channel = SharedChannel.CreateUnboundedPrioritized(segment, "jobs", new SharedChannelOptions { ChunkCapacity = 4, RetainUndelivered = false }, ByPriority);
        WriteJobs(segment, channel, 100);
        channel.Dispose();
        Assert.False(SharedChannel.Exists(segment, "jobs"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void A_retained_prioritized_channel_keeps_the_items_storage_until_it_is_removed()
    {
        SharedSegment segment = WarmSegment();
        long baseline = Used(segment);
        SharedChannel<Job> channel = SharedChannel.CreateUnboundedPrioritized(segment, "jobs", new SharedChannelOptions { ChunkCapacity = 4 }, ByPriority);
        WriteJobs(segment, channel, 100);
        long full = Used(segment);
        channel.Dispose();

        // Retained: the items and what they own are still there, readable by the next process.
        Assert.True(SharedChannel.Exists(segment, "jobs"));
        Assert.Equal(full, Used(segment));
        using (SharedChannel<Job> reopened = SharedChannel.OpenPrioritized(segment, "jobs", ByPriority))
        {
            Assert.True(reopened.Reader.TryRead(out Job first));
            Assert.Equal(0, first.Priority);
            Assert.StartsWith("job-0-", first.Label.ToString(segment), StringComparison.Ordinal);
            reopened.Release(first);
        }

        Assert.True(SharedChannel.Remove(segment, "jobs"));
        Assert.Equal(baseline, Used(segment));
    }
}
