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
}
