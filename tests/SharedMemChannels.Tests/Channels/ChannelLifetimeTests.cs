using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// RaftLib's channel lifetime: channels are reference counted across processes (each open adds a
/// reference, Dispose drops it, a dead process's references are dropped for it) and a drained one is
/// removed when the last reference goes, unless made to persist (one that still holds items is retained:
/// <see cref="ChannelRetentionTests"/>); an explicit removal completes the channel for the others with
/// <see cref="ChannelRemovedException"/>.
/// </summary>
public sealed class ChannelLifetimeTests : SegmentTest
{
    private SharedSegment SegmentWithDirectory(out long usedBefore)
    {
        SharedSegment segment = NewSegment("life");
        segment.Construct<int>("x"); // the directory's table exists before the baseline
        usedBefore = segment.GetHeapStatistics().UsedBytes;
        return segment;
    }

    [Fact]
    public void The_last_reference_going_removes_a_drained_channel()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<long> first = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(256));
        SharedChannel<long> second = SharedChannel.Open<long>(segment, "c");
        Assert.True(first.Writer.TryWrite(1));
        Assert.True(first.Writer.TryWrite(2));

        first.Dispose();
        Assert.True(SharedChannel.Exists(segment, "c"));
        Assert.True(second.Reader.TryRead(out long item));
        Assert.Equal(1, item);
        Assert.True(second.Reader.TryRead(out item));
        Assert.Equal(2, item);

        second.Dispose(); // the last reference, and nothing left in it: the channel goes
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Empty(SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
        Assert.Throws<KeyNotFoundException>(() => SharedChannel.Open<long>(segment, "c"));

        // The name is free again, for a new channel with other options.
        using SharedChannel<long> again = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(8));
        Assert.Equal(0, again.Reader.Count);
    }

    [Fact]
    public void A_persistent_channel_keeps_its_items_without_any_reference()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        var options = new SharedChannelOptions(16) { Persistent = true };
        using (SharedChannel<int> writer = SharedChannel.CreateBounded<int>(segment, "p", options))
        {
            Assert.True(writer.Writer.TryWrite(42));
        }

        Assert.True(SharedChannel.Exists(segment, "p"));
        Assert.True(Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels).Persistent);
        using (SharedChannel<int> reader = SharedChannel.Open<int>(segment, "p"))
        {
            Assert.True(reader.Reader.TryRead(out int item));
            Assert.Equal(42, item);
            Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, "p", new SharedChannelOptions(16)));
        }

        Assert.True(SharedChannel.Exists(segment, "p"));
        Assert.True(SharedChannel.Remove(segment, "p"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Two_instances_in_one_process_are_two_references()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<int> a = SharedChannel.OpenOrCreateBounded<int>(segment, "c", new SharedChannelOptions(4));
        SharedChannel<int> b = SharedChannel.OpenOrCreateBounded<int>(segment, "c", new SharedChannelOptions(4));
        Assert.True(a.Writer.TryWrite(5));
        a.Dispose();
        Assert.True(SharedChannel.Exists(segment, "c"));
        Assert.True(b.Reader.TryRead(out int item));
        Assert.Equal(5, item);
        b.Dispose();
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Opening_and_disposing_in_a_loop_never_finds_a_half_destroyed_channel()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        var options = new SharedChannelOptions(8);
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 200; i++)
            {
                using SharedChannel<int> channel = SharedChannel.OpenOrCreateBounded<int>(segment, "churn", options);
                if (channel.Writer.TryWrite(i))
                {
                    channel.Reader.TryRead(out _);
                }
            }
        });

        Assert.False(SharedChannel.Exists(segment, "churn"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Processes_opening_and_disposing_one_channel_at_once_never_touch_a_destroyed_one()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using ChildProcess first = HostOnBackend("channel-churn", segment.Name, "--channel", "churn", "--count", "2000");
        using ChildProcess second = HostOnBackend("channel-churn", segment.Name, "--channel", "churn", "--count", "2000");
        first.WaitForLine("started");
        second.WaitForLine("started");
        var options = new SharedChannelOptions(8);
        for (int i = 0; i < 2000; i++)
        {
            using SharedChannel<long> channel = SharedChannel.OpenOrCreateBounded<long>(segment, "churn", options);
            if (channel.Writer.TryWrite(i))
            {
                channel.Reader.TryRead(out _);
            }
        }

        Assert.Equal("churned n=2000", first.WaitForLine("churned"));
        Assert.Equal("churned n=2000", second.WaitForLine("churned"));
        Assert.Equal(0, first.Finish());
        Assert.Equal(0, second.Finish());
        Assert.False(SharedChannel.Exists(segment, "churn"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_killed_processs_reference_is_dropped_for_it()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        string name = "k";
        SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, name, new SharedChannelOptions(64));
        using ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "reader");
        child.WaitForLine("holding");

        // The child's reference keeps the (drained) channel after ours goes.
        mine.Dispose();
        Assert.True(SharedChannel.Exists(segment, name));
        Assert.Single(Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels).Endpoints);

        child.Kill();
        WaitUntil(() => segment.ReclaimDeadProcesses() >= 0 && !SharedChannel.Exists(segment, name), "the dead child's reference dropped and the channel removed");
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Disposing_after_the_only_other_holder_was_killed_removes_the_channel()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        string name = "k2";
        SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, name, new SharedChannelOptions(64));
        using (ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "reader"))
        {
            child.WaitForLine("holding");
            child.Kill();
        }

        mine.Dispose();
        Assert.False(SharedChannel.Exists(segment, name));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_channel_held_only_by_the_dead_goes_when_the_next_process_attaches()
    {
        SharedSegment segment = SegmentWithDirectory(out _);
        using (SharedChannel.CreateBounded<long>(segment, "kept", new SharedChannelOptions(64) { Persistent = true }))
        {
        }

        // A persistent channel stays; a plain drained one whose last holder was killed goes when a process attaches.
        SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, "orphan", new SharedChannelOptions(64));
        using ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", "orphan", "--as", "reader");
        child.WaitForLine("holding");
        mine.Dispose();
        Assert.True(SharedChannel.Exists(segment, "orphan"));
        child.Kill();

        WaitUntil(
            () =>
            {
                using SharedSegment later = SharedSegment.Open(segment.Name, new SegmentOptions { Backend = Backend });
                return !SharedChannel.Exists(later, "orphan");
            },
            "the orphaned channel removed by an attaching process");
        Assert.True(SharedChannel.Exists(segment, "kept"));
    }

    [Fact]
    public void A_removal_reaches_a_reader_in_another_process_as_ChannelRemovedException()
    {
        SharedSegment segment = NewSegment("life");
        string name = "r";
        using SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, name, new SharedChannelOptions(8));
        using ChildProcess reader = HostOnBackend("channel-reader", segment.Name, "--channel", name);
        reader.WaitForLine("ready");
        Assert.True(mine.Writer.TryWrite(3));
        Assert.Equal("read v=3", reader.WaitForLine("read"));

        Assert.True(SharedChannel.Remove(segment, name));
        Assert.Equal("end ChannelRemovedException", reader.WaitForLine("end"));
        Assert.Equal(0, reader.Finish());
        Assert.False(SharedChannel.Exists(segment, name)); // removed, though this process still holds it (as topics)
        Assert.Throws<InvalidOperationException>(() => SharedChannel.Open<long>(segment, name));
        Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == name && c.State == "removed");
        mine.Dispose();
        Assert.False(SharedChannel.Exists(segment, name));
        Assert.DoesNotContain(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == name);
    }
}
