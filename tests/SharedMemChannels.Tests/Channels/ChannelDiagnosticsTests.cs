using System.Text.Json;
using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>Channels as the public inspection API and <c>shmc inspect</c> show them.</summary>
public sealed class ChannelDiagnosticsTests : SegmentTest
{
    [Fact]
    public void A_channel_is_reported_with_its_shape_counters_completion_and_processes()
    {
        SharedSegment segment = NewSegment("diag");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "orders", new SharedChannelOptions(4) { FullMode = BoundedChannelFullMode.DropOldest });
        for (int i = 0; i < 6; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.True(channel.Reader.TryRead(out _));
        channel.Writer.Complete(new FormatException("bad tick"));

        ChannelReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.Equal("orders", report.Name);
        Assert.Equal("ready", report.State);
        Assert.Equal("System.Int64", report.ElementTypeName);
        Assert.Equal(8, report.ElementSize);
        Assert.Equal(4, report.Capacity);
        Assert.Equal(BoundedChannelFullMode.DropOldest, report.FullMode);
        Assert.Equal("mpmc", report.Ring);
        Assert.Equal(3, report.Count);
        Assert.Equal(6, report.Written);
        Assert.Equal(1, report.Read);
        Assert.Equal(2, report.Dropped);
        Assert.Equal("faulted", report.Completion);
        Assert.Equal("System.FormatException: bad tick", report.CompletionError);
        ChannelEndpointReport me = Assert.Single(report.Endpoints);
        Assert.Equal(Environment.ProcessId, me.ProcessId);
        Assert.True(me.IsReader && me.IsWriter);
        Assert.Equal(ProcessLiveness.Alive, me.Liveness);
    }

    [Fact]
    public void A_single_reader_channel_shows_the_lease_and_shmc_inspect_prints_it()
    {
        SharedSegment segment = NewSegment("diag");
        using SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "jobs", new SharedChannelOptions(8) { SingleReader = true, SingleWriter = true });
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Reader.TryPeek(out int head));
        Assert.Equal(1, head);

        ChannelReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.Equal("spsc", report.Ring);
        Assert.True(report.SingleReader && report.SingleWriter);
        ChannelEndpointReport me = Assert.Single(report.Endpoints);
        Assert.True(me.HoldsReaderLease && me.HoldsWriterLease);

        ChildProcess tool = Shmc("inspect", segment.Name, "--json");
        Assert.Equal(0, tool.WaitForExit());
        using JsonDocument json = JsonDocument.Parse(tool.Transcript);
        JsonElement channelJson = json.RootElement.GetProperty("channels").EnumerateArray().Single();
        Assert.Equal("jobs", channelJson.GetProperty("name").GetString());
        Assert.Equal("wait", channelJson.GetProperty("fullMode").GetString());
        Assert.Equal(1, channelJson.GetProperty("count").GetInt64());
    }
}
