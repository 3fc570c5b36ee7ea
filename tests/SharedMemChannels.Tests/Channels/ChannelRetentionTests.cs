using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;
using SharedMemChannels.Tests.Records;
using SharedMemChannels.TestHost;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// Nothing committed is lost by default: a channel whose last reference goes (disposed or killed) while it
/// holds items, or a completion no reader has seen, is retained with them until a reader takes them or
/// someone removes it; a drained one follows RaftLib's reference counting. Every kind of channel, across
/// processes whose writer has exited before the reader comes.
/// </summary>
public sealed class ChannelRetentionTests : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(300);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private SharedSegment SegmentWithDirectory(out long usedBefore)
    {
        SharedSegment segment = NewSegment("keep", capacity: 4 << 20);
        segment.Construct<int>("x"); // the directory's table exists before the baseline
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose(); // and the thread cache is warm
        usedBefore = segment.GetHeapStatistics().UsedBytes;
        return segment;
    }

    private static ChannelReport Report(SharedSegment segment, string name) =>
        Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == name);

    [Fact]
    public void A_channel_whose_last_reference_goes_with_items_is_retained_until_a_reader_takes_them()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using (SharedChannel<long> writer = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(256)))
        {
            Assert.True(writer.Writer.TryWrite(1));
            Assert.True(writer.Writer.TryWrite(2));
        }

        Assert.True(SharedChannel.Exists(segment, "c"));
        ChannelReport report = Report(segment, "c");
        Assert.True(report.Retained);
        Assert.True(report.RetainUndelivered);
        Assert.Equal(2, report.Count);
        Assert.Empty(report.Endpoints);

        using (SharedChannel<long> reader = SharedChannel.Open<long>(segment, "c"))
        {
            Assert.False(Report(segment, "c").Retained); // held again
            Assert.True(reader.Reader.TryRead(out long item));
            Assert.Equal(1, item);
        }

        // One item left: still retained.
        Assert.Equal(1, Report(segment, "c").Count);
        using (SharedChannel<long> reader = SharedChannel.Open<long>(segment, "c"))
        {
            Assert.True(reader.Reader.TryRead(out long item));
            Assert.Equal(2, item);
        }

        // Drained and never completed: it went with its last reference.
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Without_RetainUndelivered_the_last_reference_takes_the_items_with_it()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        var options = new SharedChannelOptions(256) { RetainUndelivered = false };
        SharedChannel<long> first = SharedChannel.CreateBounded<long>(segment, "c", options);
        Assert.False(Report(segment, "c").RetainUndelivered);
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, "c", new SharedChannelOptions(256)));
        Assert.True(first.Writer.TryWrite(1));
        Assert.True(first.Writer.TryComplete());
        first.Dispose();

        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public async Task A_completion_nobody_has_seen_is_retained_and_the_reader_that_sees_it_lets_the_channel_go()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using (SharedChannel<long> writer = SharedChannel.CreateBounded<long>(segment, "done", new SharedChannelOptions(8)))
        {
            Assert.True(writer.Writer.TryComplete());
            _ = writer.Reader.Count; // looking at it as a writer is not seeing it
        }

        ChannelReport report = Report(segment, "done");
        Assert.True(report.Retained);
        Assert.Equal(0, report.Count);
        Assert.Equal("completed", report.Completion);
        Assert.False(report.CompletionSeen);

        using (SharedChannel<long> reader = SharedChannel.Open<long>(segment, "done"))
        {
            Assert.False(await reader.Reader.WaitToReadAsync());
            Assert.True(Report(segment, "done").CompletionSeen);
        }

        Assert.False(SharedChannel.Exists(segment, "done"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Removing_a_retained_channel_frees_it_and_its_items_at_once()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using (SharedChannel<long> writer = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(64)))
        {
            for (int i = 0; i < 10; i++)
            {
                Assert.True(writer.Writer.TryWrite(i));
            }
        }

        Assert.True(Report(segment, "c").Retained);
        Assert.True(SharedChannel.Remove(segment, "c"));
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.DoesNotContain(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == "c");
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Exists_is_false_after_Remove_while_a_process_still_holds_the_channel_as_for_topics()
    {
        SharedSegment segment = NewSegment("keep");
        using SharedChannel<long> held = SharedChannel.CreateBounded<long>(segment, "r", new SharedChannelOptions(8));
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions());
        Assert.True(SharedChannel.Exists(segment, "r"));
        Assert.True(SharedChannel.Remove(segment, "r"));
        Assert.True(SharedTopic.Remove(segment, "t"));
        Assert.False(SharedTopic.Exists(segment, "t"));
        Assert.False(SharedChannel.Exists(segment, "r"));
        Assert.Equal(SharedTopic.Exists(segment, "t"), SharedChannel.Exists(segment, "r"));
        Assert.Throws<InvalidOperationException>(() => SharedChannel.Open<long>(segment, "r"));
    }

    // ---------------------------------------------------------------- every kind, across processes

    /// <summary>Lets the child that holds the channel finish: this process's reference goes first, so the child's is the last.</summary>
    private static void LastReferenceInChild(IDisposable mine, ChildProcess writer, string doneLine)
    {
        writer.WaitForLine("ready", Generous);
        mine.Dispose();
        writer.WaitForLine(doneLine, Generous);
        Assert.Equal(0, writer.Finish(Generous));
    }

    [Fact]
    public void Records_written_by_a_process_that_exited_are_read_whole_by_a_later_one()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedRecordChannel mine = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(64));
        using (ChildProcess writer = HostOnBackend("record-writer", segment.Name, "--channel", "rec", "--sizes", "100,5000", "--count", "40"))
        {
            LastReferenceInChild(mine, writer, "done");
        }

        ChannelReport report = Report(segment, "rec");
        Assert.True(report.Retained);
        Assert.Equal(40, report.Count);

        using (ChildProcess reader = HostOnBackend("record-reader", segment.Name, "--channel", "rec", "--sizes", "100,5000"))
        {
            reader.WaitForLine("ready", Generous);
            Assert.Equal("read n=40 bad=0", reader.WaitForLine("read", Generous));
            Assert.Equal(0, reader.Finish(Generous));
        }

        Assert.False(SharedChannel.Exists(segment, "rec"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Serialized_items_written_by_a_process_that_exited_are_read_equal_by_a_later_one()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<Trade> mine = SharedChannel.CreateBounded(segment, "trades", new SharedChannelOptions(64), TradeSerializers.For("memorypack"));
        using (ChildProcess writer = HostOnBackend("serial-writer", segment.Name, "--channel", "trades", "--format", "memorypack", "--count", "50", "--big-every", "7", "--big-size", "3000"))
        {
            LastReferenceInChild(mine, writer, "done");
        }

        Assert.Equal(50, Report(segment, "trades").Count);
        using (ChildProcess reader = HostOnBackend("serial-reader", segment.Name, "--channel", "trades", "--format", "memorypack", "--big-every", "7", "--big-size", "3000"))
        {
            reader.WaitForLine("ready", Generous);
            Assert.Equal("read n=50 bad=0", reader.WaitForLine("read", Generous));
            Assert.Equal(0, reader.Finish(Generous));
        }

        Assert.False(SharedChannel.Exists(segment, "trades"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public async Task Elements_owning_strings_and_vectors_outlive_the_writer_that_built_them()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<OwnedItem> mine = SharedChannel.CreateBounded<OwnedItem>(segment, "hw", new SharedChannelOptions(64));
        using (ChildProcess writer = HostOnBackend("owned-writer", segment.Name, "--channel", "hw", "--count", "30"))
        {
            LastReferenceInChild(mine, writer, "done");
        }

        Assert.Equal(30, Report(segment, "hw").Count);
        int n = 0;
        using (SharedChannel<OwnedItem> reader = SharedChannel.Open<OwnedItem>(segment, "hw"))
        {
            using var cts = new CancellationTokenSource(Generous);
            await foreach (OwnedItem item in reader.Reader.ReadAllAsync(cts.Token))
            {
                Assert.Equal(n, item.Id);
                Assert.Equal($"item-{n}", item.Name.ToString(segment));
                Assert.Equal((n % 7) + 1, item.Values.GetCount(segment));
                Assert.Equal(n, item.Values.AsSpan(segment)[0]);
                n++;
            }
        }

        Assert.Equal(30, n);
        Assert.False(SharedChannel.Exists(segment, "hw"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void An_unbounded_channel_keeps_its_chunks_for_a_later_reader()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<long> mine = SharedChannel.CreateUnbounded<long>(segment, "u", new SharedChannelOptions { ChunkCapacity = 64 });
        using (ChildProcess writer = HostOnBackend("unbounded-writer", segment.Name, "--channel", "u", "--id", "1", "--count", "1000"))
        {
            LastReferenceInChild(mine, writer, "wrote");
        }

        ChannelReport report = Report(segment, "u");
        Assert.True(report.Retained);
        Assert.Equal(1000, report.Count);
        Assert.True(report.ChunkCount >= 1000 / 64);
        using (SharedChannel<long> reader = SharedChannel.Open<long>(segment, "u"))
        {
            for (long n = 0; n < 1000; n++)
            {
                Assert.True(reader.Reader.TryRead(out long item));
                Assert.Equal((1L << 32) | n, item);
            }

            Assert.False(reader.Reader.TryRead(out _));
        }

        Assert.False(SharedChannel.Exists(segment, "u"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_killed_last_holder_with_items_queued_leaves_them_retained_through_the_dead_reference_sweep()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, "k", new SharedChannelOptions(64));
        using (ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", "k", "--as", "writer"))
        {
            child.WaitForLine("holding");
            mine.Dispose();
            child.Kill();
        }

        segment.ReclaimDeadProcesses(); // the sweep: the dead holder's reference goes, the item stays
        using (SharedSegment later = OpenSegment(segment.Name))
        {
            Assert.True(SharedChannel.Exists(later, "k"));
        }

        ChannelReport report = Report(segment, "k");
        Assert.True(report.Retained);
        Assert.Equal(1, report.Count);
        using (SharedChannel<long> reader = SharedChannel.Open<long>(segment, "k"))
        {
            Assert.True(reader.Reader.TryRead(out long item));
            Assert.Equal(7, item);
        }

        Assert.False(SharedChannel.Exists(segment, "k"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_remove_on_last_detach_segment_stays_while_it_holds_a_retained_channel()
    {
        string name = NewName("rold");
        SegmentOptions options = NewOptions();
        options.RemoveOnLastDetach = true;
        using (SharedSegment segment = SharedSegment.Create(name, options))
        using (SharedChannel<long> writer = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(8)))
        {
            Assert.True(writer.Writer.TryWrite(5));
        }

        Assert.True(SharedSegment.Exists(name, Backend));
        using (SharedSegment segment = SharedSegment.OpenOrCreate(name, options))
        {
            Assert.False(segment.IsCreator); // attached to, not replaced
            using SharedChannel<long> reader = SharedChannel.Open<long>(segment, "c");
            Assert.True(reader.Reader.TryRead(out long item));
            Assert.Equal(5, item);
        }

        Assert.False(SharedSegment.Exists(name, Backend));
    }

    // ---------------------------------------------------------------- a damaged endpoint word

    /// <summary>The row of the endpoint table that names this process, of the channel's control block.</summary>
    private static ref uint MyRow(SharedChannel<long> channel)
    {
        ChannelCore<long> core = channel.Core;
        for (int i = 0; i < ChannelControl.EndpointCount; i++)
        {
            ref uint owner = ref core.Segment.Memory.Ref<uint>(ChannelLayout.EndpointOffset(core.ControlOffset, i));
            if (owner == core.Segment.Owner.Value)
            {
                return ref owner;
            }
        }

        throw new InvalidOperationException("no row names this process");
    }

    [Theory]
    [InlineData(0u)]           // zeroed: the row looks free
    [InlineData(0x7ABC_1234u)] // garbage: an owner the process table never had
    public void A_damaged_endpoint_word_never_destroys_the_channel_under_its_live_user(uint garbage)
    {
        SharedSegment segment = SegmentWithDirectory(out _);
        using SharedChannel<long> user = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(16));
        Assert.True(user.Writer.TryWrite(11));
        Assert.True(user.Writer.TryWrite(12));
        Volatile.Write(ref MyRow(user), garbage);

        // Another reference comes and goes, and the dead-reference sweep runs: the user's reference stands.
        SharedChannel.Open<long>(segment, "c").Dispose();
        segment.ReclaimDeadProcesses();
        using (SharedSegment other = OpenSegment(segment.Name))
        {
            Assert.True(SharedChannel.Exists(other, "c"));
        }

        Assert.True(SharedChannel.Exists(segment, "c"));
        Assert.True(user.Reader.TryRead(out long first));
        Assert.Equal(11, first);
        Assert.True(user.Reader.TryRead(out long second));
        Assert.Equal(12, second);
        Assert.True(user.Writer.TryWrite(13));
        Assert.Equal(1, user.Reader.Count);
    }

    // ---------------------------------------------------------------- shmc

    [Fact]
    public void Shmc_list_and_inspect_show_a_retained_channel_with_its_items()
    {
        SharedSegment segment = NewSegment("keep");
        using (SharedChannel<long> writer = SharedChannel.CreateBounded<long>(segment, "kept", new SharedChannelOptions(16)))
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.True(writer.Writer.TryWrite(i));
            }
        }

        using (ChildProcess list = Shmc("list"))
        {
            Assert.Equal(0, list.WaitForExit());
            Assert.Contains("RETAINED", list.Transcript, StringComparison.Ordinal);
            string line = list.Transcript.Split('\n').Single(l => l.Contains(segment.Name, StringComparison.Ordinal));
            Assert.Contains("1 (3 items)", line, StringComparison.Ordinal);
        }

        using (ChildProcess inspect = Shmc("inspect", segment.Name))
        {
            Assert.Equal(0, inspect.WaitForExit());
            Assert.Contains("retained: no live reference, kept for 3 items", inspect.Transcript, StringComparison.Ordinal);
        }

        using ChildProcess json = Shmc("inspect", segment.Name, "--json");
        Assert.Equal(0, json.WaitForExit());
        Assert.Contains("\"retained\": true", json.Transcript, StringComparison.Ordinal);
        Assert.Equal(Str(3), Str(Report(segment, "kept").Count));
    }
}
