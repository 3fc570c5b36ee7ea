using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Rings;
using SharedMemChannels.Tests.Infrastructure;
using Xunit.Abstractions;

#pragma warning disable CA2012 // Use ValueTasks correctly: some ValueTasks are looked at before they are awaited, on purpose.

namespace SharedMemChannels.Tests;

/// <summary>
/// Unbounded channels (<see cref="SharedChannel.CreateUnbounded{T}"/>): options and opening, growth to the
/// segment's limit and back, the chain across processes (SPSC and MPMC children), killed writers and a
/// killed chain-lock holder, a damaged chain, no allocation in steady state, inspection and destruction.
/// The channel contract itself runs in <c>SharedUnboundedChannelConformanceTests</c>.
/// </summary>
public sealed class UnboundedChannelTests(ITestOutputHelper output) : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(90);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private (SharedSegment Segment, string Name, SharedChannel<long> Channel) NewChannel(SharedChannelOptions options, long capacity = 1 << 20, long max = 64 << 20)
    {
        SharedSegment segment = NewSegment("unb", capacity, max);
        string name = NewName("u");
        return (segment, name, Track(SharedChannel.CreateUnbounded<long>(segment, name, options)));
    }

    /// <summary>
    /// Runs <paramref name="body"/>; if it fails while <paramref name="reading"/> still reads the channel,
    /// completes the channel and lets the reading end before the test unmaps the segment under it.
    /// </summary>
    private static async Task StopOnFailure(SharedChannel<long> channel, Task reading, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch
        {
            channel.Writer.TryComplete();
            await Task.WhenAny(reading, Task.Delay(Generous));
            throw;
        }
    }

    private static UnboundedRing<long> RingOf(SharedChannel<long> channel) => (UnboundedRing<long>)channel.Core.Ring;

    /// <summary>Heap bytes in use, counting blocks this thread caches as free (they are).</summary>
    private static long Used(SharedSegment segment)
    {
        HeapStatistics stats = segment.GetHeapStatistics();
        return stats.UsedBytes;
    }

    // ---------------------------------------------------------------- options and opening

    [Fact]
    public void Options_default_and_validate_the_chunk_capacity()
    {
        var options = new SharedChannelOptions();
        Assert.Equal(SharedChannelOptions.DefaultCapacity, options.Capacity);
        Assert.Equal(SharedChannelOptions.DefaultChunkCapacity, options.ChunkCapacity);
        Assert.Equal("value", Assert.Throws<ArgumentOutOfRangeException>(() => options.ChunkCapacity = 0).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ChunkCapacity = SharedChannelOptions.MaxChunkCapacity + 1);
        options.ChunkCapacity = SharedChannelOptions.MaxChunkCapacity;
        Assert.Equal(SharedChannelOptions.MaxChunkCapacity, options.ChunkCapacity);
    }

    [Fact]
    public void Bad_arguments_are_refused_and_leave_no_channel()
    {
        SharedSegment segment = NewSegment("unb");
        Assert.Throws<ArgumentNullException>(() => SharedChannel.CreateUnbounded<long>(segment, "x", null!));
        Assert.Throws<ArgumentNullException>(() => SharedChannel.OpenOrCreateUnbounded<long>(segment, "x", null!));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateUnbounded<long>(segment, "bad name!", new SharedChannelOptions()));

        // A chunk bigger than the largest allocation: 4 KiB elements, a million per chunk.
        var huge = new SharedChannelOptions { ChunkCapacity = SharedChannelOptions.MaxChunkCapacity };
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedChannel.CreateUnbounded<Page>(segment, "huge", huge));
        using SharedChannel<Page> ok = SharedChannel.CreateUnbounded<Page>(segment, "huge", new SharedChannelOptions { ChunkCapacity = 4 });
        Assert.True(ok.Writer.TryWrite(default));
    }

    [Fact]
    public void Open_opens_an_unbounded_channel_and_mismatched_options_or_kinds_are_refused()
    {
        var options = new SharedChannelOptions { ChunkCapacity = 32, SingleReader = true };
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(options);
        Assert.True(channel.IsUnbounded);
        Assert.Equal(int.MaxValue, channel.Capacity);
        Assert.Equal(BoundedChannelFullMode.Wait, channel.FullMode); // never full: as the BCL's unbounded channel
        Assert.Contains("unbounded", channel.ToString(), StringComparison.Ordinal);

        using SharedChannel<long> opened = SharedChannel.Open<long>(segment, name);
        Assert.True(opened.IsUnbounded);
        Assert.True(opened.SingleReader);
        using SharedChannel<long> again = SharedChannel.OpenOrCreateUnbounded<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 32, SingleReader = true });

        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnbounded<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 64, SingleReader = true }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnbounded<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 32 }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(32) { SingleReader = true }));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<int>(segment, name));
        Assert.Throws<InvalidOperationException>(() => SharedChannel.CreateUnbounded<long>(segment, name, options));

        string bounded = NewName("b");
        using SharedChannel<long> b = SharedChannel.CreateBounded<long>(segment, bounded, new SharedChannelOptions(8));
        Assert.False(b.IsUnbounded);
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnbounded<long>(segment, bounded, new SharedChannelOptions()));

        // Items written through one instance are read through another.
        Assert.True(channel.Writer.TryWrite(41));
        Assert.True(again.Writer.TryWrite(42));
        Assert.True(opened.Reader.TryRead(out long first));
        Assert.True(opened.Reader.TryRead(out long second));
        Assert.Equal((41, 42), (first, second));
    }

    [Fact]
    public void The_chain_descriptor_names_disjoint_fields_each_party_on_its_own_lines()
    {
        const int Line = RingLayout.LineSize;
        (int Offset, int Size)[] lockLine =
        [
            (ChainLayout.LockOffset, 4), (ChainLayout.ChunkCapacityOffset, 4), (ChainLayout.CellSizeOffset, 4),
            (ChainLayout.ChunkBytesOffset, 8), (ChainLayout.IntentOpOffset, 4), (ChainLayout.IntentChunkOffset, 8),
            (ChainLayout.IntentIndexOffset, 8), (ChainLayout.FreedOffset, 8),
        ];
        (int Offset, int Size)[] chainLine =
        [
            (ChainLayout.FirstChunkOffset, 8), (ChainLayout.FirstIndexOffset, 8), (ChainLayout.TailChunkOffset, 8), (ChainLayout.TailIndexOffset, 8),
        ];
        AssertDisjointOnLine(lockLine, RingLayout.SlotsOffset / Line);
        AssertDisjointOnLine(chainLine, (RingLayout.SlotsOffset / Line) + 1);

        // The pins: rows of their own after the chain, each row's words inside the row, the table inside the descriptor.
        Assert.Equal(RingLayout.SlotsOffset + (2 * Line), ChainLayout.PinsOffset);
        Assert.True(ChainLayout.PinWriteOffset + 8 <= ChainLayout.PinRowSize);
        Assert.True(ChainLayout.PinOwnerOffset + 4 <= ChainLayout.PinReadOffset);
        Assert.Equal(RingLayout.SlotsOffset + ChainLayout.DescriptorBytes, ChainLayout.PinRowOffset(ChainLayout.PinRows));
        Assert.Equal(RingLayout.SlotsOffset + ChainLayout.DescriptorBytes, RingLayout.RequiredBytes(RingKind.Unbounded, 8, 1024));

        // A chunk: its header on line 0, cells from line 1, 8-aligned; the start of a block's chunk on a line.
        AssertDisjointOnLine(
            [(ChainLayout.ChunkMagicOffset, 8), (ChainLayout.ChunkIndexOffset, 8), (ChainLayout.ChunkNextOffset, 8), (ChainLayout.ChunkCapacityInChunkOffset, 4), (ChainLayout.ChunkCellSizeOffset, 4)],
            0);
        Assert.Equal(Line, ChainLayout.ChunkCellsOffset);
        Assert.Equal(Line + (3 * 16), ChainLayout.CellOffset(3, 16));
        Assert.Equal(0, ChainLayout.ChunkStart(4096 + 16) % Line);
        Assert.True(ChainLayout.ChunkStart(4096 + 16) - (4096 + 16) < Line);
        Assert.Equal(ChainLayout.ChunkRequiredBytes(1024, 16) + Line, ChainLayout.ChunkAllocationBytes(1024, 16));

        static void AssertDisjointOnLine((int Offset, int Size)[] fields, int line)
        {
            var sorted = fields.OrderBy(f => f.Offset).ToArray();
            for (int i = 0; i < sorted.Length; i++)
            {
                Assert.Equal(line, sorted[i].Offset / Line);
                Assert.Equal(line, (sorted[i].Offset + sorted[i].Size - 1) / Line);
                Assert.Equal(0, sorted[i].Offset % sorted[i].Size);
                if (i > 0)
                {
                    Assert.True(sorted[i - 1].Offset + sorted[i - 1].Size <= sorted[i].Offset, $"fields at {sorted[i - 1].Offset} and {sorted[i].Offset} overlap");
                }
            }
        }
    }

    // ---------------------------------------------------------------- growth and the limit

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task It_grows_to_the_segments_limit_then_refuses_and_gives_the_chunks_back_as_it_drains(bool oneEach)
    {
        SharedSegment segment = NewSegment("grow", capacity: 1 << 20, max: 4 << 20);
        long baseline = Used(segment);
        using SharedChannel<long> channel = SharedChannel.CreateUnbounded<long>(segment, NewName("u"), new SharedChannelOptions { ChunkCapacity = 256, SingleReader = oneEach, SingleWriter = oneEach });
        UnboundedRing<long> ring = RingOf(channel);
        long chunkBytes = UnboundedRing<long>.ChunkAllocationBytes(256);
        long withChannel = Used(segment);

        long written = 0;
        while (channel.Writer.TryWrite(written))
        {
            written++;
            Assert.True(written < 10_000_000, "the channel never reached the segment's limit");
        }

        output.WriteLine($"{written} items in {ring.ChunkCount} chunks; segment capacity {segment.Capacity}");
        Assert.True(written > 100_000, $"only {written} items fitted in 4 MiB");
        Assert.Equal(written, channel.Reader.Count);
        Assert.True(segment.Capacity > 3 << 20, "the segment grew toward its maximum");

        // At the limit: TryWrite false, WriteAsync throws (never waits), WaitToWriteAsync stays true.
        Assert.False(channel.Writer.TryWrite(-1));
        await Assert.ThrowsAsync<OutOfSharedMemoryException>(async () => await channel.Writer.WriteAsync(-1));
        ValueTask<bool> wait = channel.Writer.WaitToWriteAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(await wait);

        for (long i = 0; i < written; i++)
        {
            Assert.True(channel.Reader.TryRead(out long item));
            if (item != i)
            {
                Assert.Fail($"read {item} at position {i}");
            }
        }

        Assert.False(channel.Reader.TryRead(out _));
        Assert.Equal(0, channel.Reader.Count);

        // Drained: only the tail chunk is left, and the heap is back where it was with the new channel.
        Assert.Equal(1, ring.ChunkCount);
        long used = Used(segment);
        output.WriteLine($"heap used: {baseline} before the channel, {withChannel} with it, {used} after draining; a chunk is {chunkBytes} bytes");
        Assert.InRange(used, baseline, withChannel + chunkBytes);

        // And it grows again.
        for (long i = 0; i < 10_000; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.Equal(10_000, channel.Reader.Count);
    }

    // ---------------------------------------------------------------- across processes

    [Fact]
    public async Task A_writer_child_streams_to_a_reader_here_in_order_across_many_chunks()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 64, SingleReader = true, SingleWriter = true });
        const long count = 100_000;
        ChildProcess writer = HostOnBackend("unbounded-writer", segment.Name, "--channel", name, "--id", "7", "--count", Str(count));
        long expected = 0;
        Task reading = Task.Run(async () =>
        {
            while (expected < count)
            {
                long item = await channel.Reader.ReadAsync();
                Assert.Equal((7L << 32) | expected, item);
                expected++;
            }
        });
        await StopOnFailure(channel, reading, async () =>
        {
            await reading.WaitAsync(Generous);
            writer.WaitForLine("wrote");
        });
        Assert.Equal(0, writer.Finish());
        Assert.False(channel.Reader.TryRead(out _));
        Assert.Equal(1, RingOf(channel).ChunkCount);
    }

    [Fact]
    public async Task Writer_and_reader_children_many_of_each_deliver_every_item_once_in_each_writers_order()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 32 });
        const int writers = 3;
        const int readers = 2;
        const long perWriter = 20_000;
        var readerChildren = Enumerable.Range(0, readers).Select(_ => HostOnBackend("unbounded-reader", segment.Name, "--channel", name)).ToList();
        readerChildren.ForEach(r => r.WaitForLine("ready"));
        var writerChildren = Enumerable.Range(1, writers).Select(id => HostOnBackend("unbounded-writer", segment.Name, "--channel", name, "--id", Str(id), "--count", Str(perWriter))).ToList();
        foreach (ChildProcess w in writerChildren)
        {
            w.WaitForLine("wrote");
            Assert.Equal(0, w.Finish());
        }

        channel.Writer.Complete();
        long items = 0;
        long sum = 0;
        foreach (ChildProcess r in readerChildren)
        {
            string end = r.WaitForLine("end");
            Assert.Equal("True", Field(end, "inorder"));
            items += long.Parse(Field(end, "items"), CultureInfo.InvariantCulture);
            sum += long.Parse(Field(end, "sum"), CultureInfo.InvariantCulture);
            Assert.Equal(0, r.Finish());
        }

        long expectedSum = 0;
        for (long id = 1; id <= writers; id++)
        {
            expectedSum += (id << 32) * perWriter + (perWriter * (perWriter - 1) / 2);
        }

        Assert.Equal(writers * perWriter, items);
        Assert.Equal(expectedSum, sum);
        await channel.Reader.Completion.WaitAsync(Generous);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Writers_killed_mid_stream_lose_nothing_they_committed_duplicate_nothing_and_the_chain_goes_on(bool oneEach)
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 16, SingleReader = oneEach, SingleWriter = oneEach });
        var next = new Dictionary<long, long>();
        var failures = new List<string>();
        int perRound = oneEach ? 1 : 2;
        long id = 0;
        for (int round = 0; round < 3; round++)
        {
            var children = new List<(long Id, ChildProcess Child)>();
            for (int k = 0; k < perRound; k++)
            {
                long writerId = ++id;
                next[writerId] = 0;
                ChildProcess child = HostOnBackend("unbounded-writer", segment.Name, "--channel", name, "--id", Str(writerId), "--every", "8", "--wait-go");
                child.WaitForLine("ready");
                children.Add((writerId, child));
            }

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

                    long writer = item >> 32;
                    long sequence = item & 0xFFFF_FFFF;
                    lock (next)
                    {
                        if (sequence != next.GetValueOrDefault(writer, -1))
                        {
                            failures.Add($"writer {writer}: read {sequence}, expected {next.GetValueOrDefault(writer, -1)}");
                        }

                        next[writer] = sequence + 1;
                    }
                }
            });

            var committed = new Dictionary<long, long>();
            await StopOnFailure(channel, reading, async () =>
            {
                children.ForEach(c => c.Child.Send("go"));
                foreach ((long writerId, ChildProcess child) in children)
                {
                    long threshold = Random.Shared.Next(50, 3000);
                    while (long.Parse(Field(child.WaitForLine("committed"), "n"), CultureInfo.InvariantCulture) < threshold)
                    {
                    }

                    child.Kill();
                    committed[writerId] = child.Transcript.Split('\n')
                        .Where(l => l.StartsWith("committed n=", StringComparison.Ordinal))
                        .Max(l => long.Parse(l["committed n=".Length..].Trim(), CultureInfo.InvariantCulture));
                }

                await reading.WaitAsync(Generous);
            });
            Assert.False(channel.Reader.TryRead(out long left), $"item {left} was still readable after the abandonment");
            foreach ((long writerId, long n) in committed)
            {
                Assert.True(next[writerId] >= n, $"writer {writerId} committed {n} items but {next[writerId]} were read");
            }

            output.WriteLine($"round {round}: read {string.Join(", ", children.Select(c => $"{c.Id}:{next[c.Id]}"))}, skipped {channel.Core.Header.Skipped}, chunks {RingOf(channel).ChunkCount}");
        }

        Assert.Empty(failures);
        Assert.Equal(0, channel.Core.Header.Lost);

        // The chain is whole: it still carries items, and drained it is one chunk again.
        for (long i = 0; i < 100; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        for (long i = 0; i < 100; i++)
        {
            Assert.True(channel.Reader.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.Equal(1, RingOf(channel).ChunkCount);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reader_killed_mid_stream_costs_at_most_the_item_it_held_and_its_chunks_are_still_freed(bool oneEach)
    {
        for (int round = 0; round < 2; round++)
        {
            const int N = 4000;
            (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 8, SingleReader = oneEach, SingleWriter = oneEach });
            ChildProcess child = HostOnBackend("channel-reader", segment.Name, "--channel", name); // opens either kind
            child.WaitForLine("ready");
            Task writing = Task.Run(async () =>
            {
                for (long i = 0; i < N; i++)
                {
                    await channel.Writer.WriteAsync(i);
                }

                channel.Writer.Complete();
            });

            var mine = new List<long>();
            await StopOnFailure(channel, writing, async () =>
            {
                int threshold = Random.Shared.Next(1, 2000);
                for (int seen = 0; seen < threshold; seen++)
                {
                    child.WaitForLine("read");
                }

                child.Kill();

                // This process reads on (taking the single reader end over from the dead): its pins and claims never stop it.
                await foreach (long item in channel.Reader.ReadAllAsync())
                {
                    mine.Add(item);
                }

                await writing.WaitAsync(Generous);
                await channel.Reader.Completion.WaitAsync(Generous);
            });

            var theirs = child.Transcript.Split('\n')
                .Where(l => l.StartsWith("read v=", StringComparison.Ordinal))
                .Select(l => long.Parse(l["read v=".Length..].Trim(), CultureInfo.InvariantCulture))
                .ToList();
            Assert.Equal(mine.Count, mine.Distinct().Count());
            Assert.Equal(theirs.Count, theirs.Distinct().Count());
            Assert.Empty(mine.Intersect(theirs));
            Assert.Equal(mine.Order(), mine);
            int missing = N - mine.Count - theirs.Count;
            long lost = channel.Core.Header.Lost;
            output.WriteLine($"round {round}: child read {theirs.Count}, parent {mine.Count}, missing {missing}, lost {lost}, chunks {RingOf(channel).ChunkCount}");
            Assert.InRange(missing, 0, 1);
            Assert.InRange(lost, 0, missing);
            Assert.Equal(1, RingOf(channel).ChunkCount); // the dead reader's pin holds nothing back
        }
    }

    [Theory]
    [InlineData("unlinked")]
    [InlineData("linked")]
    public void A_process_killed_holding_the_chain_lock_mid_link_is_recovered_and_leaks_nothing(string stage)
    {
        SharedSegment segment = NewSegment("lock", capacity: 2 << 20, max: 16 << 20);
        string name = NewName("u");
        using SharedChannel<long> channel = SharedChannel.CreateUnbounded<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 8 });
        UnboundedRing<long> ring = RingOf(channel);
        for (long i = 0; i < 5; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        long before = Used(segment);
        ChildProcess dier = HostOnBackend("unbounded-link-die", segment.Name, "--channel", name, "--stage", stage);
        dier.WaitForLine("locked");
        dier.Kill();

        // The next write that needs the lock (the chunk is full at position 8) takes it over and repairs the chain.
        for (long i = 5; i < 100; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        for (long i = 0; i < 100; i++)
        {
            Assert.True(channel.Reader.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.False(channel.Reader.TryRead(out _));
        Assert.Equal(1, ring.ChunkCount);
        long after = Used(segment);
        output.WriteLine($"{stage}: heap used {before} before, {after} after");
        Assert.InRange(after, 0, before + UnboundedRing<long>.ChunkAllocationBytes(8));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_free_left_half_done_by_a_dead_lock_holder_is_finished_or_put_back_if_a_live_process_pins_the_chunk(bool pinned)
    {
        // The state a reclaimer leaves when killed between unlinking the oldest chunk and freeing it: the
        // intent says "free chunk 0", FirstIndex already says 1. The next holder's recovery decides.
        SharedSegment segment = NewSegment("free", capacity: 2 << 20, max: 16 << 20);
        using SharedChannel<long> channel = SharedChannel.CreateUnbounded<long>(segment, NewName("u"), new SharedChannelOptions { ChunkCapacity = 64, SingleReader = pinned });
        UnboundedRing<long> ring = RingOf(channel);
        for (long i = 0; i < 150; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        if (pinned)
        {
            Assert.True(channel.Reader.TryPeek(out long head)); // a single reader's pin stays on chunk 0
            Assert.Equal(0, head);
        }

        Assert.Equal(3, ring.ChunkCount);
        var memory = segment.Attachment.Memory;
        long root = ring.RootOffset;
        long chunk0 = memory.Int64(root + ChainLayout.FirstChunkOffset);
        long payload = segment.Attachment.Heap.GetPayloadOffset(ShmHandle.FromValue((ulong)chunk0), out _, out _);
        long chunk1 = memory.Int64(ChainLayout.ChunkStart(payload) + ChainLayout.ChunkNextOffset);
        long used = Used(segment);
        memory.Int64(root + ChainLayout.IntentChunkOffset) = chunk0;
        memory.Int64(root + ChainLayout.IntentIndexOffset) = 0;
        memory.Int32(root + ChainLayout.IntentOpOffset) = ChainLayout.IntentFree;
        memory.Int64(root + ChainLayout.FirstChunkOffset) = chunk1;
        memory.Int64(root + ChainLayout.FirstIndexOffset) = 1;

        ((SharedMemChannels.Synchronization.ILockRecovery)ring).RecoverLocked();

        Assert.Equal(ChainLayout.IntentNone, memory.Int32(root + ChainLayout.IntentOpOffset));
        if (pinned)
        {
            // Put back: the chunk a live reader pins is not freed, and its items are still read, in order.
            Assert.Equal(chunk0, memory.Int64(root + ChainLayout.FirstChunkOffset));
            Assert.Equal(3, ring.ChunkCount);
            Assert.Equal(used, Used(segment));
            for (long i = 0; i < 150; i++)
            {
                Assert.True(channel.Reader.TryRead(out long item));
                Assert.Equal(i, item);
            }

            Assert.Equal(1, ring.ChunkCount);
        }
        else
        {
            // Finished: the chunk is freed (its 64 items were unreachable from then on: this test made them so).
            Assert.Equal(chunk1, memory.Int64(root + ChainLayout.FirstChunkOffset));
            Assert.Equal(2, ring.ChunkCount);
            long chunkBytes = UnboundedRing<long>.ChunkAllocationBytes(64);
            Assert.InRange(used - Used(segment), chunkBytes, chunkBytes + 512); // the block, its header and rounding
        }
    }

    // ---------------------------------------------------------------- damage

    [Theory]
    [InlineData(0x7FFF_FFFF_FFFF_FFF0L)]
    [InlineData(12345L)]
    [InlineData(0x100L)]
    [InlineData(long.MinValue)]
    public void A_damaged_chunk_link_is_an_exception_never_a_crash_or_a_hang(long garbage)
    {
        (SharedSegment segment, _, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 4 });
        for (long i = 0; i < 12; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.True(channel.Reader.TryRead(out long zero));
        Assert.Equal(0, zero);
        long chunk = RingOf(channel).ReaderChunkStartForTest;
        Assert.True(chunk > 0);
        var memory = segment.Attachment.Memory;
        ref long next = ref memory.Int64(chunk + ChainLayout.ChunkNextOffset);
        long saved = next;
        next = garbage == 0x100L ? saved ^ garbage : garbage; // 0x100: the right block with a wrong generation
        for (long i = 1; i < 4; i++)
        {
            Assert.True(channel.Reader.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));
        next = saved;
        Assert.True(channel.Reader.TryRead(out long fourth));
        Assert.Equal(4, fourth);
    }

    [Theory]
    [InlineData(ChainLayout.FirstChunkOffset, 99L)]
    [InlineData(ChainLayout.FirstIndexOffset, -5L)]
    [InlineData(ChainLayout.TailIndexOffset, 1L << 62)]
    [InlineData(ChainLayout.TailChunkOffset, 0L)]
    public void A_damaged_chain_descriptor_is_an_exception_for_a_new_user(int field, long garbage)
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 4 });
        for (long i = 0; i < 6; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        long root = RingOf(channel).RootOffset;
        var memory = segment.Attachment.Memory;
        ref long word = ref memory.Int64(root + field);
        long saved = word;
        word = garbage;
        using SharedChannel<long> other = SharedChannel.Open<long>(segment, name);
        Assert.Throws<InvalidSegmentException>(() =>
        {
            // A fresh instance finds its place through the descriptor: reading and writing both must notice.
            other.Reader.TryRead(out _);
            for (int i = 0; i < 8; i++)
            {
                other.Writer.TryWrite(i);
            }
        });
        word = saved;
    }

    [Fact]
    public void A_damaged_cell_word_is_an_exception()
    {
        (SharedSegment segment, _, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 8 });
        Assert.True(channel.Writer.TryWrite(1));
        Assert.True(channel.Reader.TryPeek(out _));
        long chunk = RingOf(channel).ReaderChunkStartForTest;
        var memory = segment.Attachment.Memory;
        memory.Int64(chunk + ChainLayout.CellOffset(0, 16)) = RingLayout.CellWord(12345, 0);
        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));
    }

    // ---------------------------------------------------------------- allocation

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Steady_state_allocates_nothing_even_while_chunks_are_linked_and_freed(bool oneEach)
    {
        (_, _, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 8, SingleReader = oneEach, SingleWriter = oneEach });
        Churn(channel, 2_000);
        long freedBefore = RingOf(channel).ChunkCount;
        long before = GC.GetAllocatedBytesForCurrentThread();
        long sum = Churn(channel, 20_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
        Assert.Equal(freedBefore, RingOf(channel).ChunkCount); // 40,000 items went through 5,000 chunks, all given back

        Assert.Equal(0, ChurnAsync(channel, 3_000));
        long asyncBefore = GC.GetAllocatedBytesForCurrentThread();
        int wrong = ChurnAsync(channel, 20_000);
        long asyncAllocated = GC.GetAllocatedBytesForCurrentThread() - asyncBefore;
        Assert.Equal(0, wrong);
        Assert.Equal(0, asyncAllocated);
    }

    /// <summary>WriteAsync then ReadAsync, each of which must complete at once; returns how many did not (or read wrong).</summary>
    private static int ChurnAsync(SharedChannel<long> channel, int rounds)
    {
        int wrong = 0;
        for (int i = 1; i <= rounds; i++)
        {
            ValueTask write = channel.Writer.WriteAsync(i);
            wrong += write.IsCompletedSuccessfully ? 0 : 1;
            write.GetAwaiter().GetResult();
            ValueTask<long> read = channel.Reader.ReadAsync();
            wrong += read.IsCompletedSuccessfully && read.GetAwaiter().GetResult() == i ? 0 : 1;
        }

        return wrong;
    }

    private static long Churn(SharedChannel<long> channel, int rounds)
    {
        long sum = 0;
        for (int i = 1; i <= rounds; i++)
        {
            channel.Writer.TryWrite(i);
            channel.Writer.TryWrite(i);
            channel.Reader.TryRead(out long a);
            channel.Reader.TryRead(out long b);
            sum += a + b;
        }

        return sum;
    }

    // ---------------------------------------------------------------- inspection and destruction

    [Fact]
    public void Inspection_shows_an_unbounded_channel_with_its_chunks()
    {
        (SharedSegment segment, _, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 100 });
        for (long i = 0; i < 250; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        ChannelReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.True(report.IsUnbounded);
        Assert.Equal("unbounded", report.Ring);
        Assert.Equal(int.MaxValue, report.Capacity);
        Assert.Equal(100, report.ChunkCapacity);
        Assert.Equal(250, report.Count);
        Assert.Equal(3, report.ChunkCount);
        Assert.Equal(3 * UnboundedRing<long>.ChunkAllocationBytes(100), report.ChunkBytes);
    }

    [Fact]
    public void Removing_the_channel_frees_its_whole_chain()
    {
        SharedSegment segment = NewSegment("rm", capacity: 2 << 20, max: 16 << 20);
        // A first channel made and removed: the directory keeps what it grew by (a bounded channel does the same).
        string first = NewName("w");
        SharedChannel.CreateUnbounded<long>(segment, first, new SharedChannelOptions { ChunkCapacity = 64, Persistent = true }).Dispose();
        Assert.True(SharedChannel.Remove(segment, first));
        long baseline = Used(segment);

        // Without Persistent, and without retaining undelivered items, the last reference going frees the whole chain.
        SharedChannel<long> counted = SharedChannel.CreateUnbounded<long>(segment, NewName("c"), new SharedChannelOptions { ChunkCapacity = 64, RetainUndelivered = false });
        for (long i = 0; i < 10_000; i++)
        {
            Assert.True(counted.Writer.TryWrite(i));
        }

        counted.Dispose();
        Assert.Equal(baseline, Used(segment));

        string name = NewName("u");
        SharedChannel<long> channel = SharedChannel.CreateUnbounded<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 64, Persistent = true });
        for (long i = 0; i < 10_000; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.True(RingOf(channel).ChunkCount > 100);
        Assert.True(Used(segment) > baseline + (100 * UnboundedRing<long>.ChunkAllocationBytes(64)));
        channel.Dispose();
        Assert.True(SharedChannel.Remove(segment, name));
        Assert.False(SharedChannel.Exists(segment, name));
        Assert.Equal(baseline, Used(segment));
    }

    /// <summary>A big element, for the chunk-size limit.</summary>
    private struct Page
    {
#pragma warning disable CS0649 // never assigned: only its size matters
        public Page4K Bytes;
#pragma warning restore CS0649
    }

    [System.Runtime.CompilerServices.InlineArray(4096)]
    private struct Page4K
    {
        private byte _first;
    }
}
