using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Tests.Infrastructure;
using Xunit.Abstractions;

#pragma warning disable CA2012 // Use ValueTasks correctly: pending operations are held to check they are pending.

namespace SharedMemChannels.Tests;

/// <summary>
/// <see cref="SharedChannel{T}"/> with peers that die (SIGKILL at random moments), misbehave (a second
/// single reader / writer), complete it from another process, or damage it; and the refusals of
/// making and opening channels. Children are test host roles (Roles/ChannelRoles.cs).
/// </summary>
public sealed class ChannelCrashTests(ITestOutputHelper output) : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private (SharedSegment Segment, string Name, SharedChannel<long> Channel) NewChannel(SharedChannelOptions options)
    {
        SharedSegment segment = NewSegment("crash", capacity: 4 << 20, max: 64 << 20);
        string name = NewName("c");
        return (segment, name, Track(SharedChannel.CreateBounded<long>(segment, name, options)));
    }

    /// <summary>The largest "committed n=K" a writer child printed (its output is complete once it was killed and reaped).</summary>
    private static long Committed(ChildProcess child) =>
        child.Transcript.Split('\n')
            .Where(l => l.StartsWith("committed n=", StringComparison.Ordinal))
            .Select(l => long.Parse(l["committed n=".Length..].Trim(), CultureInfo.InvariantCulture))
            .DefaultIfEmpty(0)
            .Max();

    // ---------------------------------------------------------------- killed writers

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Writers_killed_at_random_moments_lose_nothing_they_committed_deliver_nothing_twice_and_a_restarted_writer_goes_on(bool spsc)
    {
        var options = new SharedChannelOptions(16) { SingleReader = spsc, SingleWriter = spsc };
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(options);
        var next = new Dictionary<long, long>(); // writer id -> the sequence number it must deliver next
        var reported = new Dictionary<long, long>(); // writer id -> items it said were committed
        var failures = new List<string>();
        int writersPerRound = spsc ? 1 : 2;
        long writerId = 0;

        void Deliver(long item)
        {
            long writer = item >> 32;
            long sequence = item & 0xFFFF_FFFF;
            lock (next)
            {
                long expected = next.GetValueOrDefault(writer, -1);
                if (sequence != expected)
                {
                    failures.Add($"writer {writer}: read {sequence}, expected {expected}");
                }

                next[writer] = sequence + 1;
            }
        }

        for (int round = 0; round < 4; round++)
        {
            var children = new List<(long Id, ChildProcess Child)>();
            for (int k = 0; k < writersPerRound; k++)
            {
                long id = ++writerId;
                lock (next)
                {
                    next[id] = 0;
                }

                ChildProcess child = HostOnBackend("channel-writer", segment.Name, "--channel", name, "--id", Str(id), "--every", "4", "--wait-go");
                child.WaitForLine("ready");
                children.Add((id, child));
            }

            // Read until every writer of the round is dead: the channel's own signal ends the loop.
            Task reading = Task.Run(async () =>
            {
                while (true)
                {
                    long item;
                    try
                    {
                        item = await channel.Reader.ReadAsync();
                    }
                    catch (ChannelAbandonedException)
                    {
                        return;
                    }

                    Deliver(item);
                }
            });

            foreach ((_, ChildProcess child) in children)
            {
                child.Send("go");
            }

            foreach ((long id, ChildProcess child) in children)
            {
                long threshold = Random.Shared.Next(1, 600);
                while (long.Parse(Field(child.WaitForLine("committed"), "n"), CultureInfo.InvariantCulture) < threshold)
                {
                }

                child.Kill();
                reported[id] = Committed(child);
            }

            await reading.WaitAsync(Generous);
            // Abandoned means nothing committed is left: a dead writer's claimed cell does not hide items behind it.
            Assert.False(channel.Reader.TryRead(out long left), $"item {left} was still readable after the abandonment");
            output.WriteLine($"round {round}: committed {string.Join(", ", children.Select(c => $"{c.Id}:{reported[c.Id]}"))}, read {string.Join(", ", children.Select(c => $"{c.Id}:{next[c.Id]}"))}, skipped {channel.Core.Header.Skipped}");
        }

        Assert.Empty(failures);
        foreach ((long id, long committed) in reported)
        {
            Assert.True(next[id] >= committed, $"writer {id} committed {committed} items but {next[id]} were read");
        }

        // Written = Read + Dropped + Lost + Count, except that a writer killed between publishing an item
        // and counting it leaves the Written statistic one short (the item itself was delivered once, as
        // checked above): at most one per killed writer. No reader died, so nothing was lost.
        RingHeaderCounters(channel, out long written, out long read, out long lost);
        Assert.Equal(0, lost);
        Assert.InRange(read - written, 0, writerId);
    }

    [Fact]
    public async Task A_writer_killed_between_its_claim_and_its_publish_is_stepped_over_and_items_behind_it_are_read()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(16));
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2));
        SharedMemChannels.Channels.ChannelControl control = channel.Core.Segment.Memory.Ref<SharedMemChannels.Channels.ChannelControl>(channel.Core.ControlOffset);
        ChildProcess claimant = Host("ring-claim", segment.Name, Str(control.RingOffset), Str(control.RingLength), "write");
        Assert.Equal("claimed pos=2", claimant.WaitForLine("claimed"));
        Assert.True(channel.Writer.TryWrite(3));
        Assert.True(channel.Writer.TryWrite(4));
        Assert.Equal(5, channel.Reader.Count); // tail - head: the claimed cell counts until it is stepped over
        claimant.Kill();

        var got = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            got.Add(await channel.Reader.ReadAsync().AsTask().WaitAsync(Generous));
        }

        Assert.Equal([1, 2, 3, 4], got);
        Assert.Equal(1, channel.Core.Header.Skipped);
        Assert.Equal(0, channel.Reader.Count);

        // A writer in another process goes on from there.
        ChildProcess successor = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "writer");
        successor.WaitForLine("holding");
        Assert.Equal(7, await channel.Reader.ReadAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task Abandonment_is_not_reported_while_items_wait_behind_a_dead_writers_claim()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(16));
        SharedMemChannels.Channels.ChannelControl control = channel.Core.Segment.Memory.Ref<SharedMemChannels.Channels.ChannelControl>(channel.Core.ControlOffset);
        ChildProcess claimant = Host("ring-claim", segment.Name, Str(control.RingOffset), Str(control.RingLength), "write");
        Assert.Equal("claimed pos=0", claimant.WaitForLine("claimed"));
        ChildProcess writer = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "writer");
        writer.WaitForLine("holding"); // its 7 is at position 1, behind the claim

        // A read that found the claimant alive, and sleeps: nobody will signal it once both are dead.
        Task<long> read = Task.Run(() => channel.Reader.ReadAsync().AsTask());
        long waiters = channel.Core.Header.Offset + Rings.RingLayout.ReadersEventWaitersOffset;
        WaitUntil(() => Volatile.Read(ref channel.Core.Segment.Memory.Int32(waiters)) > 0, "the read sleeps");
        claimant.Kill();
        writer.Kill();

        // Every writer is dead, but the committed 7 must be read first: abandonment only once nothing is left.
        Assert.Equal(7, await read.WaitAsync(Generous));
        await Assert.ThrowsAsync<ChannelAbandonedException>(() => channel.Reader.ReadAsync().AsTask().WaitAsync(Generous));
    }

    private static void RingHeaderCounters(SharedChannel<long> channel, out long written, out long read, out long lost)
    {
        Rings.RingHeader header = channel.Core.Header;
        written = header.Written;
        read = header.Read;
        lost = header.Lost;
    }

    // ---------------------------------------------------------------- killed readers

    [Fact]
    public async Task A_reader_killed_mid_read_never_blocks_the_ring_and_costs_at_most_the_item_it_claimed()
    {
        for (int round = 0; round < 3; round++)
        {
            const int N = 3000;
            (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(8));
            ChildProcess child = HostOnBackend("channel-reader", segment.Name, "--channel", name);
            child.WaitForLine("ready");
            Task writing = Task.Run(async () =>
            {
                for (long i = 0; i < N; i++)
                {
                    await channel.Writer.WriteAsync(i);
                }

                channel.Writer.Complete();
            });

            int threshold = Random.Shared.Next(1, 1500);
            for (int seen = 0; seen < threshold; seen++)
            {
                child.WaitForLine("read");
            }

            child.Kill();

            // This process reads on: the dead reader's claim never stops it.
            var mine = new List<long>();
            await foreach (long item in channel.Reader.ReadAllAsync().WithCancellation(CancellationToken.None))
            {
                mine.Add(item);
            }

            await writing.WaitAsync(Generous);
            await channel.Reader.Completion.WaitAsync(Generous);

            var theirs = child.Transcript.Split('\n')
                .Where(l => l.StartsWith("read v=", StringComparison.Ordinal))
                .Select(l => long.Parse(l["read v=".Length..].Trim(), CultureInfo.InvariantCulture))
                .ToList();
            Assert.Equal(mine.Count, mine.Distinct().Count());
            Assert.Equal(theirs.Count, theirs.Distinct().Count());
            Assert.Empty(mine.Intersect(theirs));
            Assert.Equal(mine.Order(), mine); // one reader left: FIFO
            int missing = N - mine.Count - theirs.Count;
            RingHeaderCounters(channel, out long written, out long read, out long lost);
            output.WriteLine($"round {round}: child read {theirs.Count} (printed), parent {mine.Count}, missing {missing}, lost {lost}, written {written}, read {read}");
            Assert.InRange(missing, 0, 1);
            Assert.InRange(lost, 0, missing);
        }
    }

    // ---------------------------------------------------------------- abandonment

    [Fact]
    public async Task A_pending_read_fails_with_ChannelAbandonedException_when_every_writer_is_dead()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(4));
        ChildProcess writer = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "writer");
        writer.WaitForLine("holding");
        Assert.Equal(7, await channel.Reader.ReadAsync().AsTask().WaitAsync(Generous));
        ValueTask<long> pending = channel.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        writer.Kill();
        await Assert.ThrowsAsync<ChannelAbandonedException>(() => pending.AsTask().WaitAsync(Generous));
        Assert.False(channel.Reader.Completion.IsCompleted); // not completed: a new writer may go on

        ChildProcess successor = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "writer");
        successor.WaitForLine("holding");
        Assert.Equal(7, await channel.Reader.ReadAsync().AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task A_pending_write_on_a_full_channel_fails_with_ChannelAbandonedException_when_every_reader_is_dead()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(2));
        ChildProcess reader = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", "reader");
        reader.WaitForLine("holding");
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Writer.TryWrite(2));
        ValueTask pending = channel.Writer.WriteAsync(3);
        Assert.False(pending.IsCompleted);
        ValueTask<bool> waiting = channel.Writer.WaitToWriteAsync();
        Assert.False(waiting.IsCompleted);
        reader.Kill();
        await Assert.ThrowsAsync<ChannelAbandonedException>(() => pending.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ChannelAbandonedException>(() => waiting.AsTask().WaitAsync(Generous));
    }

    // ---------------------------------------------------------------- single reader / writer

    [Theory]
    [InlineData("writer", false)]
    [InlineData("reader", false)]
    [InlineData("writer", true)]
    [InlineData("reader", true)]
    public void A_second_single_reader_or_writer_process_is_refused_while_the_first_lives_and_admitted_once_it_is_killed(string end, bool both)
    {
        bool writer = end == "writer";
        var options = new SharedChannelOptions(4) { SingleWriter = writer || both, SingleReader = !writer || both };
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(options);
        ChildProcess first = HostOnBackend("channel-hold", segment.Name, "--channel", name, "--as", end);
        first.WaitForLine("holding");

        Action use = writer ? () => channel.Writer.TryWrite(8) : () => channel.Reader.TryRead(out _);
        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(use);
        output.WriteLine(refused.Message);
        Assert.Throws<InvalidOperationException>(use); // still refused: nothing was taken by the refusal

        first.Kill();
        use();
        if (writer)
        {
            Assert.True(channel.Reader.TryRead(out long seven));
            Assert.Equal(7, seven);
            Assert.True(channel.Reader.TryRead(out long eight));
            Assert.Equal(8, eight);
        }
    }

    // ---------------------------------------------------------------- completion from another process

    [Fact]
    public async Task A_fault_completed_in_another_process_reaches_a_pending_read_with_its_type_name_and_message()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(4));
        ValueTask<long> pending = channel.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        ChildProcess completer = HostOnBackend("channel-complete", segment.Name, "--channel", name, "--error", "System.FormatException", "--message", "x");
        Assert.Equal("completed ok=True", completer.WaitForLine("completed"));
        Assert.Equal(0, completer.WaitForExit());

        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(() => pending.AsTask().WaitAsync(Generous));
        RemoteChannelException remote = Assert.IsType<RemoteChannelException>(closed.InnerException);
        Assert.Equal("System.FormatException", remote.RemoteTypeName);
        Assert.Equal("x", remote.RemoteMessage);
        Assert.Contains("System.FormatException", remote.Message, StringComparison.Ordinal);

        closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Reader.ReadAsync());
        Assert.IsType<RemoteChannelException>(closed.InnerException);
        await Assert.ThrowsAsync<RemoteChannelException>(() => channel.Reader.Completion.WaitAsync(Generous));
        Assert.Equal(TaskStatus.Faulted, channel.Reader.Completion.Status);
        Assert.False(channel.Writer.TryWrite(1));
    }

    [Theory]
    [InlineData(null, TaskStatus.RanToCompletion)]
    [InlineData("System.OperationCanceledException", TaskStatus.Canceled)]
    [InlineData("System.TimeoutException", TaskStatus.Faulted)]
    public async Task Completion_in_another_process_sets_Completion_here(string? error, TaskStatus expected)
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions(4));
        Assert.True(channel.Writer.TryWrite(5));
        Task completion = channel.Reader.Completion;
        string[] args = error is null
            ? ["channel-complete", segment.Name, "--channel", name]
            : ["channel-complete", segment.Name, "--channel", name, "--error", error, "--message", "gone"];
        ChildProcess completer = HostOnBackend(args);
        Assert.Equal("completed ok=True", completer.WaitForLine("completed"));
        Assert.Equal(0, completer.WaitForExit());
        Assert.False(completion.IsCompleted); // an item is still buffered
        Assert.Equal(5, await channel.Reader.ReadAsync());
        try
        {
            await completion.WaitAsync(Generous);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // Faulted or canceled: the status says which.
        }

        Assert.Equal(expected, completion.Status);
        Assert.ThrowsAny<InvalidOperationException>(() => channel.Writer.Complete());
    }

    // ---------------------------------------------------------------- damage

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Garbage_in_the_control_block_ring_header_indices_and_cell_words_is_an_exception_never_a_crash_or_a_hang(int seed)
    {
        // In a child: an access outside the mapping or an endless spin would take the test runner with it.
        ChildProcess child = HostOnBackend("channel-damage", NewName("dmg"), "--seed", Str(seed), "--rounds", "40");
        string line = child.WaitForLine("damage ok", TimeSpan.FromMinutes(5));
        output.WriteLine(line);
        Assert.Equal(0, child.WaitForExit());
    }

    // ---------------------------------------------------------------- refusals

    [Fact]
    public void Options_that_disagree_with_the_stored_ones_are_an_ArgumentException()
    {
        (SharedSegment segment, string name, _) = NewChannel(new SharedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest });
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(9) { FullMode = BoundedChannelFullMode.DropOldest }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(8)));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true }));
        using SharedChannel<long> same = SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(8) { FullMode = BoundedChannelFullMode.DropOldest });
        Assert.Equal(8, same.Capacity);
    }

    [Fact]
    public void Opening_with_another_element_type_is_an_InvalidCastException()
    {
        SharedSegment segment = NewSegment("crash");
        string name = NewName("c");
        using SharedChannel<int> ints = SharedChannel.CreateBounded<int>(segment, name, new SharedChannelOptions(4));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, name));
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(4)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("slash/no")]
    [InlineData("star*")]
    public void A_bad_channel_name_is_an_ArgumentException(string name)
    {
        SharedSegment segment = NewSegment("crash");
        Assert.ThrowsAny<ArgumentException>(() => SharedChannel.CreateBounded<long>(segment, name, new SharedChannelOptions(4)));
        Assert.ThrowsAny<ArgumentException>(() => SharedChannel.Open<long>(segment, name));
        Assert.ThrowsAny<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(4)));
        Assert.ThrowsAny<ArgumentException>(() => SharedChannel.Open<long>(segment, new string('a', SharedChannel.MaxNameLength + 1)));
    }

    [Fact]
    public void Opening_a_missing_channel_is_a_KeyNotFoundException()
    {
        SharedSegment segment = NewSegment("crash");
        Assert.Throws<KeyNotFoundException>(() => SharedChannel.Open<long>(segment, "nobody-made-this"));
    }
}
