using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>The README's two-process channel example, run as written.</summary>
public sealed class ReadmeChannelTests : SegmentTest
{
    /// <summary>The README's message type (the same layout as the writer's, declared separately, as another program would).</summary>
    public record struct Tick(long Sequence, double Price);

    [Fact]
    public async Task The_readme_writer_and_reader_run_in_two_processes_and_leave_nothing_behind()
    {
        string name = NewName("readme");
        Host("readme-writer", name); // starts first or second: either order works

        var options = new SharedChannelOptions(capacity: 1024);
        var seen = new List<Tick>();
        using (var channel = SharedChannel.OpenOrCreateBounded<Tick>(name, options))
        {
            await foreach (Tick tick in channel.Reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(ChildProcess.DefaultWait).Token))
            {
                seen.Add(tick);
            }
        }

        Assert.Equal(1_000, seen.Count);
        Assert.Equal(Enumerable.Range(0, 1_000).Select(i => new Tick(i, 100 + i)), seen);
        WaitUntil(() => !SharedSegment.Exists(SharedChannel.SegmentPrefix + name), "the channel's segment is gone with its last process");
    }

    /// <summary>The README's "start them in any order", writer first: it writes, completes and exits before the reader starts.</summary>
    [Fact]
    public void The_readme_writer_may_write_complete_and_exit_before_the_reader_starts()
    {
        string name = NewName("readme");
        using (ChildProcess writer = Host("readme-writer", name))
        {
            Assert.Equal(0, writer.Finish());
        }

        // Nobody holds the channel now: it and its segment are retained for the 1,000 items and the completion.
        Assert.True(SharedSegment.Exists(SharedChannel.SegmentPrefix + name));
        Diagnostics.ChannelReport retained = Assert.Single(Diagnostics.SegmentDiagnostics.Inspect(SharedChannel.SegmentPrefix + name).Channels);
        Assert.True(retained.Retained);
        Assert.Equal(1_000, retained.Count);
        Assert.Equal("completed", retained.Completion);

        using ChildProcess reader = Host("readme-reader", name);
        Assert.Equal("got n=1000 inorder=True end=completed", reader.WaitForLine("got"));
        Assert.Equal(0, reader.Finish());
        WaitUntil(() => !SharedSegment.Exists(SharedChannel.SegmentPrefix + name), "the channel's segment is gone once the reader took everything");
    }

    /// <summary>The README's "start them in any order", reader first: it waits on the channel the writer then fills.</summary>
    [Fact]
    public void The_readme_reader_may_start_first()
    {
        string name = NewName("readme");
        using ChildProcess reader = Host("readme-reader", name);
        reader.WaitForLine("ready");
        using ChildProcess writer = Host("readme-writer", name);
        Assert.Equal("got n=1000 inorder=True end=completed", reader.WaitForLine("got"));
        Assert.Equal(0, writer.Finish());
        Assert.Equal(0, reader.Finish());
        WaitUntil(() => !SharedSegment.Exists(SharedChannel.SegmentPrefix + name), "the channel's segment is gone with its last process");
    }

    /// <summary>A writer killed after its writes returned: the reader that comes later gets every one, then learns the writer died.</summary>
    [Fact]
    public void A_killed_readme_writer_leaves_its_items_for_a_reader_that_starts_later()
    {
        string name = NewName("readme");
        using (ChildProcess writer = Host("readme-writer", name, "--count", "700", "--hold"))
        {
            Assert.Equal("wrote n=700", writer.WaitForLine("wrote"));
            writer.Kill();
        }

        using ChildProcess reader = Host("readme-reader", name);
        Assert.Equal("got n=700 inorder=True end=ChannelAbandonedException", reader.WaitForLine("got"));
        Assert.Equal(0, reader.Finish());
        WaitUntil(() => !SharedSegment.Exists(SharedChannel.SegmentPrefix + name), "the channel's segment is gone once the reader took everything");
    }
}
