using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>Options, naming, opening, disposing and removing channels: what a new user meets first.</summary>
public sealed class ChannelLifecycleTests : SegmentTest
{
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(SharedChannelOptions.MaxCapacity + 1)]
    public void A_capacity_out_of_range_is_rejected_by_the_constructor_and_the_setter(int capacity)
    {
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => new SharedChannelOptions(capacity));
        Assert.Equal("capacity", e.ParamName);
        var options = new SharedChannelOptions(1);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => options.Capacity = capacity);
        Assert.Equal("value", e.ParamName);
    }

    [Fact]
    public void Options_have_the_BCLs_defaults_and_reject_undefined_modes_and_negative_waits()
    {
        var options = new SharedChannelOptions(5);
        Assert.Equal(5, options.Capacity);
        Assert.Equal(BoundedChannelFullMode.Wait, options.FullMode);
        Assert.False(options.SingleReader || options.SingleWriter || options.AllowSynchronousContinuations);
        Assert.Equal(SharedChannelOptions.DefaultSpinCount, options.SpinCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.FullMode = (BoundedChannelFullMode)(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => options.FullMode = (BoundedChannelFullMode)4);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.SpinCount = -1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.YieldCount = -1);
    }

    [Fact]
    public void An_unbounded_channel_refuses_a_capacity_or_full_mode_and_makes_nothing()
    {
        SharedSegment segment = NewSegment("life");
        Action[] refused =
        [
            () => SharedChannel.CreateUnbounded<int>(segment, "u", new SharedChannelOptions(5)),
            () => SharedChannel.CreateUnbounded<int>(segment, "u", new SharedChannelOptions { Capacity = SharedChannelOptions.DefaultCapacity }),
            () => SharedChannel.CreateUnbounded<int>(segment, "u", new SharedChannelOptions { FullMode = BoundedChannelFullMode.Wait }),
            () => SharedChannel.OpenOrCreateUnbounded<int>(segment, "u", new SharedChannelOptions { FullMode = BoundedChannelFullMode.DropOldest }),
            () => SharedChannel.CreateUnboundedRecords(segment, "u", new SharedChannelOptions(5)),
            () => SharedChannel.OpenOrCreateUnboundedRecords(segment, "u", new SharedChannelOptions { FullMode = BoundedChannelFullMode.DropWrite }),
            () => SharedChannel.CreateUnbounded(segment, "u", new SharedChannelOptions(5), new SystemTextJsonSharedSerializer<string>(new System.Text.Json.JsonSerializerOptions())),
        ];
        foreach (Action make in refused)
        {
            ArgumentException e = Assert.Throws<ArgumentException>(make);
            Assert.Equal("options", e.ParamName);
            Assert.Contains("unbounded", e.Message, StringComparison.Ordinal);
        }

        Assert.Empty(segment.GetNamedObjects());

        // Left unset, every other setting suits an unbounded channel; the one the issue found took 100 items "with capacity 5".
        using SharedChannel<int> ok = SharedChannel.CreateUnbounded<int>(segment, "u", new SharedChannelOptions { ChunkCapacity = 4, SingleReader = true, Persistent = true });
        for (int i = 0; i < 100; i++)
        {
            Assert.True(ok.Writer.TryWrite(i));
        }

        Assert.Equal(int.MaxValue, ok.Capacity);
        Assert.True(SharedChannel.Remove(segment, "u"));
    }

    [Fact]
    public void A_bounded_channel_refuses_a_chunk_capacity_and_an_unmanaged_one_a_record_size()
    {
        SharedSegment segment = NewSegment("life");
        string name = NewName("one");
        Action[] refused =
        [
            () => SharedChannel.CreateBounded<int>(segment, "b", new SharedChannelOptions(4) { ChunkCapacity = 16 }),
            () => SharedChannel.OpenOrCreateBounded<int>(segment, "b", new SharedChannelOptions { ChunkCapacity = SharedChannelOptions.DefaultChunkCapacity }),
            () => SharedChannel.CreateRecords(segment, "b", new SharedChannelOptions(4) { ChunkCapacity = 16 }),
            () => SharedChannel.CreateBounded<int>(segment, "b", new SharedChannelOptions(4) { MaxRecordSize = 64 }),
            () => SharedChannel.CreateUnbounded<int>(segment, "b", new SharedChannelOptions { MaxRecordSize = 64 }),
            () => SharedChannel.OpenOrCreateBounded<int>(name, new SharedChannelOptions(4) { ChunkCapacity = 16 }),
        ];
        foreach (Action make in refused)
        {
            ArgumentException e = Assert.Throws<ArgumentException>(make);
            Assert.Equal("options", e.ParamName);
        }

        Assert.Empty(segment.GetNamedObjects());
        Assert.False(SharedSegment.Exists(SharedChannel.SegmentPrefix + name)); // the one-line form made no segment for nothing

        // Where they apply, they are taken: a record channel's largest record, an unbounded one's chunks.
        using SharedRecordChannel records = SharedChannel.CreateRecords(segment, "r", new SharedChannelOptions(4) { MaxRecordSize = 64 });
        Assert.Throws<ArgumentOutOfRangeException>(() => records.Writer.Allocate(65));
        using SharedRecordChannel unboundedRecords = SharedChannel.CreateUnboundedRecords(segment, "ur", new SharedChannelOptions { ChunkCapacity = 8, MaxRecordSize = 64 });
        Assert.Throws<ArgumentOutOfRangeException>(() => unboundedRecords.Writer.Allocate(65));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("../x")]
    [InlineData("white space")]
    public void A_bad_channel_name_is_an_ArgumentException_everywhere(string name)
    {
        SharedSegment segment = NewSegment("life");
        var options = new SharedChannelOptions(4);
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded<int>(segment, name, options));
        Assert.Throws<ArgumentException>(() => SharedChannel.Open<int>(segment, name));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, name, options));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(name, options));
        Assert.Throws<ArgumentException>(() => SharedChannel.Remove(segment, name));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded<int>(segment, new string('x', SharedChannel.MaxNameLength + 1), options));
        Assert.Empty(segment.GetNamedObjects());
    }

    [Fact]
    public void Null_arguments_are_ArgumentNullException()
    {
        SharedSegment segment = NewSegment("life");
        Assert.Throws<ArgumentNullException>(() => SharedChannel.CreateBounded<int>(null!, "c", new SharedChannelOptions(1)));
        Assert.Throws<ArgumentNullException>(() => SharedChannel.CreateBounded<int>(segment, "c", null!));
        Assert.Throws<ArgumentNullException>(() => SharedChannel.OpenOrCreateBounded<int>("c", null!));
    }

    [Fact]
    public void Create_twice_open_missing_wrong_type_and_disagreeing_options_fail_clearly()
    {
        SharedSegment segment = NewSegment("life");
        using SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "jobs", new SharedChannelOptions(8));
        Assert.Throws<InvalidOperationException>(() => SharedChannel.CreateBounded<int>(segment, "jobs", new SharedChannelOptions(8)));
        Assert.Throws<KeyNotFoundException>(() => SharedChannel.Open<int>(segment, "nothing"));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, "jobs"));
        ArgumentException e = Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, "jobs", new SharedChannelOptions(9)));
        Assert.Equal("options", e.ParamName);
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, "jobs", new SharedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, "jobs", new SharedChannelOptions(8) { SingleReader = true }));

        // A second handle in the same process works and sees the same items.
        using SharedChannel<int> again = SharedChannel.OpenOrCreateBounded<int>(segment, "jobs", new SharedChannelOptions(8));
        Assert.True(channel.Writer.TryWrite(42));
        Assert.True(again.Reader.TryRead(out int item));
        Assert.Equal(42, item);
        Assert.True(SharedChannel.Exists(segment, "jobs"));
        Assert.False(SharedChannel.Exists(segment, "other"));
    }

    [Fact]
    public void A_disposed_channel_refuses_use_and_the_others_go_on()
    {
        SharedSegment segment = NewSegment("life");
        SharedChannel<int> first = SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(4));
        using SharedChannel<int> second = SharedChannel.Open<int>(segment, "c");
        Assert.True(first.Writer.TryWrite(1));
        first.Dispose();
        first.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => first.Writer.TryWrite(2));
        Assert.Throws<ObjectDisposedException>(() => first.Reader.Count);
        Assert.True(second.Reader.TryRead(out int item));
        Assert.Equal(1, item);
    }

    [Fact]
    public async Task Removing_a_channel_completes_it_for_its_users_and_frees_it_when_the_last_detaches()
    {
        SharedSegment segment = NewSegment("life");
        segment.Construct<int>("x"); // the directory's table exists before the baseline
        long usedBefore = segment.GetHeapStatistics().UsedBytes;
        SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(64));
        ValueTask<int> pending = channel.Reader.ReadAsync();
        Assert.True(SharedChannel.Remove(segment, "c"));
        Assert.False(SharedChannel.Remove(segment, "c"));

        ChannelRemovedException removed = await Assert.ThrowsAsync<ChannelRemovedException>(async () => await pending);
        Assert.Contains("was removed", removed.Message, StringComparison.Ordinal);
        Assert.False(channel.Writer.TryWrite(1));
        await Assert.ThrowsAsync<ChannelRemovedException>(async () => await channel.Writer.WriteAsync(1));
        await Assert.ThrowsAsync<ChannelRemovedException>(() => channel.Reader.Completion);
        Assert.Throws<InvalidOperationException>(() => SharedChannel.Open<int>(segment, "c"));
        Assert.Equal("removed", Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels).State);

        channel.Dispose();
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);

        // The name can be used again.
        using SharedChannel<int> again = SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(4));
        Assert.True(again.Writer.TryWrite(5));
    }

    [Fact]
    public void Removing_a_channel_nobody_holds_frees_it_at_once()
    {
        SharedSegment segment = NewSegment("life");
        segment.Construct<int>("x"); // the directory's table exists before the baseline
        long usedBefore = segment.GetHeapStatistics().UsedBytes;
        SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(1000) { Persistent = true }).Dispose();
        Assert.True(SharedChannel.Exists(segment, "c"));
        Assert.True(SharedChannel.Remove(segment, "c"));
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
        Assert.Empty(SegmentDiagnostics.Inspect(segment.Name).Channels);
    }

    [Fact]
    public async Task Disposing_the_segment_fails_pending_operations_instead_of_leaving_them()
    {
        SharedSegment segment = SharedSegment.Create(NewName("life"), new SegmentOptions { Capacity = 1 << 20 });
        SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(4) { SpinCount = 0 });
        ValueTask<int> pending = channel.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        segment.Dispose();
        await Assert.ThrowsAnyAsync<ObjectDisposedException>(async () => await pending);
        channel.Dispose();
    }

    [Fact]
    public void The_one_line_form_makes_a_segment_for_the_channel_and_removes_it_with_the_last_user()
    {
        string name = NewName("oneline");
        SharedChannel<long> a = SharedChannel.OpenOrCreateBounded<long>(name, new SharedChannelOptions(16));
        SharedChannel<long> b = SharedChannel.OpenOrCreateBounded<long>(name, new SharedChannelOptions(16));
        Assert.Equal(SharedChannel.SegmentPrefix + name, a.Segment.Name);
        Assert.True(a.Segment.RemoveOnLastDetach);
        Assert.True(a.Writer.TryWrite(7));
        Assert.True(b.Reader.TryRead(out long item));
        Assert.Equal(7, item);
        a.Dispose();
        Assert.True(SharedSegment.Exists(SharedChannel.SegmentPrefix + name));
        b.Dispose();
        Assert.False(SharedSegment.Exists(SharedChannel.SegmentPrefix + name));
    }
}
