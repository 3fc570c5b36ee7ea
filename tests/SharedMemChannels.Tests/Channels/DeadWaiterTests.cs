using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// Readers and writers killed while they sleep on a channel are taken off its waiter counts at the next
/// attach or ReclaimDeadProcesses (each process's announcement is recorded in its endpoint row); before,
/// every killed waiter left the count one higher for good, and each signal paid a wake-up syscall for it.
/// </summary>
public sealed class DeadWaiterTests : SegmentTest
{
    private const int Children = 4;

    private static ChannelReport Report(SharedSegment segment) => Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels, c => c.Name == "w");

    [Fact]
    public async Task Readers_killed_while_waiting_are_taken_off_the_count_and_a_live_reader_still_wakes()
    {
        SharedSegment segment = NewSegment("dwait");
        using SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, "w", new SharedChannelOptions(8));
        var children = Enumerable.Range(0, Children).Select(_ => HostOnBackend("channel-reader", segment.Name, "--channel", "w")).ToList();
        children.ForEach(c => c.WaitForLine("ready"));
        WaitUntil(() => Report(segment).WaitingReaders == Children, "every child reader sleeps on the channel");

        // Several reads of this process wait too: one announcement for all of them.
        var reads = Enumerable.Range(0, 3).Select(_ => mine.Reader.ReadAsync().AsTask()).ToList();
        WaitUntil(() => Report(segment).WaitingReaders == Children + 1, "this process's reads sleep too");

        children.ForEach(c => c.Kill());
        Assert.Equal(Children + 1, Report(segment).WaitingReaders); // the dead are still counted...
        segment.ReclaimDeadProcesses();
        Assert.Equal(1, Report(segment).WaitingReaders);           // ...until the survivors take them off

        for (long i = 0; i < 3; i++)
        {
            Assert.True(mine.Writer.TryWrite(i));
        }

        long[] got = await Task.WhenAll(reads).WaitAsync(ChildProcess.DefaultWait);
        Assert.Equal([0, 1, 2], got.Order());
        WaitUntil(() => Report(segment).WaitingReaders == 0, "no reader waits any more");
    }

    [Fact]
    public void Writers_killed_while_waiting_for_room_are_taken_off_at_the_next_attach()
    {
        SharedSegment segment = NewSegment("dwait");
        using SharedChannel<long> mine = SharedChannel.CreateBounded<long>(segment, "w", new SharedChannelOptions(2));
        var children = Enumerable.Range(0, Children).Select(i => HostOnBackend("channel-writer", segment.Name, "--channel", "w", "--id", (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList();
        // The first fills the channel; each then sleeps until there is room (the others before they print "ready").
        WaitUntil(() => Report(segment).WaitingWriters == Children, "every child writer sleeps on the full channel");

        children.ForEach(c => c.Kill());
        Assert.Equal(Children, Report(segment).WaitingWriters);
        using (OpenSegment(segment.Name))
        {
            Assert.Equal(0, Report(segment).WaitingWriters); // the attach's sweep took them off
        }

        // The channel goes on: the items the dead wrote are there, and room wakes nobody dead.
        Assert.Equal(2, mine.Reader.Count);
        Assert.True(mine.Reader.TryRead(out _));
        Assert.True(mine.Writer.TryWrite(99));
    }
}
