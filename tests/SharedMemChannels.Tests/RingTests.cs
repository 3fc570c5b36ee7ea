using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Rings;
using SharedMemChannels.Synchronization;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>Line-aligned blocks of a test segment for rings and event counts.</summary>
internal static class RingBlocks
{
    /// <summary>A segment-owned block of at least <paramref name="length"/> bytes starting on a 128-byte boundary.</summary>
    public static long Allocate(SharedSegment segment, long length)
    {
        ShmHandle handle = segment.Allocate(checked((int)length + RingLayout.LineSize), ShmOwnership.Segment);
        segment.GetSpan(handle).Clear();
        long payload = segment.HeapInternal.GetPayloadOffset(handle, out _, out _);
        return (payload + RingLayout.LineSize - 1) & ~(long)(RingLayout.LineSize - 1);
    }

    public static SpscRing<long> Spsc(SharedSegment segment, int capacity, out long offset)
    {
        long length = SpscRing<long>.RequiredBytes(capacity);
        offset = Allocate(segment, length);
        return SpscRing<long>.Create(segment.Memory, offset, length, capacity, segment.Processes);
    }

    public static MpmcRing<long> Mpmc(SharedSegment segment, int capacity, out long offset, out long length)
    {
        length = MpmcRing<long>.RequiredBytes(capacity);
        offset = Allocate(segment, length);
        return MpmcRing<long>.Create(segment.Memory, offset, length, capacity, segment.Processes, segment.Owner);
    }

    /// <summary>Runs <paramref name="action"/> on a thread and waits for it with a generous timeout: for "never an endless spin".</summary>
    public static Exception? RunBounded(Action action)
    {
        Exception? caught = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                caught = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(ChildProcess.DefaultWait), "the operation did not end: an endless spin");
        return caught;
    }
}

public class RingTests : SegmentTest
{
    [Fact]
    public void Layout_puts_writer_words_reader_words_and_events_on_separate_lines()
    {
        static int Line(int offset) => offset / RingLayout.LineSize;
        int[] writer = [RingLayout.TailOffset, RingLayout.WrittenOffset, RingLayout.DroppedOffset];
        int[] reader = [RingLayout.HeadOffset, RingLayout.ReadOffset];
        Assert.All(writer, o => Assert.Equal(Line(RingLayout.TailOffset), Line(o)));
        Assert.All(reader, o => Assert.Equal(Line(RingLayout.HeadOffset), Line(o)));
        int[] lines = [Line(RingLayout.MagicOffset), Line(RingLayout.TailOffset), Line(RingLayout.HeadOffset),
            Line(RingLayout.ReadersEventSequenceOffset), Line(RingLayout.WritersEventSequenceOffset), Line(RingLayout.CompletionStateOffset)];
        Assert.Equal(lines.Length, lines.Distinct().Count());
        Assert.True(RingLayout.CompletionMessageOffset + RingLayout.MaxMessageBytes <= RingLayout.SlotsOffset);
        Assert.Equal(0, RingLayout.SlotsOffset % RingLayout.LineSize);
    }

    [Fact]
    public void Cell_word_packs_sequence_and_claimant()
    {
        var owner = Segments.OwnerId.From(255, 0x7FFF);
        long word = RingLayout.CellWord(123_456_789_012, RingLayout.ClaimFor(owner));
        Assert.Equal(owner, RingLayout.ClaimantOf(word));
        Assert.Equal(0, RingLayout.SequenceDiff(word, 123_456_789_012));
        Assert.Equal(-1, RingLayout.SequenceDiff(word, 123_456_789_013));
        Assert.Equal(5, RingLayout.SequenceDiff(RingLayout.CellWord(RingLayout.SequenceMask + 3, 0), RingLayout.SequenceMask - 2)); // across the 2^39 wrap
        Assert.Equal(Segments.OwnerId.None, RingLayout.ClaimantOf(RingLayout.CellWord(7, 0)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(1000)]
    public void Spsc_holds_exactly_its_capacity_in_order(int capacity)
    {
        SharedSegment segment = NewSegment("ring");
        SpscRing<long> ring = RingBlocks.Spsc(segment, capacity, out _);
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < capacity; i++)
            {
                Assert.True(ring.TryWrite(i + (round * 10_000L)));
            }

            Assert.False(ring.TryWrite(-1));
            Assert.Equal(capacity, ring.Count);
            Assert.True(ring.TryPeek(out long first));
            Assert.Equal(round * 10_000L, first);
            for (int i = 0; i < capacity; i++)
            {
                Assert.True(ring.TryRead(out long item));
                Assert.Equal(i + (round * 10_000L), item);
            }

            Assert.False(ring.TryRead(out _));
            Assert.Equal(0, ring.Count);
        }

        Assert.Equal(3L * capacity, ring.Header.Written);
        Assert.Equal(3L * capacity, ring.Header.Read);
    }

    [Fact]
    public void Spsc_wraps_around_many_times()
    {
        SharedSegment segment = NewSegment("ring");
        SpscRing<long> ring = RingBlocks.Spsc(segment, 3, out _);
        long next = 0;
        long expected = 0;
        for (int round = 0; round < 10_000; round++)
        {
            int n = (round % 3) + 1;
            for (int i = 0; i < n; i++)
            {
                Assert.True(ring.TryWrite(next++));
            }

            for (int i = 0; i < n; i++)
            {
                Assert.True(ring.TryRead(out long item));
                Assert.Equal(expected++, item);
            }
        }
    }

    [Fact]
    public void Spsc_streams_between_two_threads_and_a_second_attachment()
    {
        SharedSegment segment = NewSegment("ring");
        SpscRing<long> writer = RingBlocks.Spsc(segment, 64, out long offset);
        SpscRing<long> reader = SpscRing<long>.Attach(segment.Memory, offset, SpscRing<long>.RequiredBytes(64), segment.Processes);
        const int Count = 200_000;
        var producer = new Thread(() =>
        {
            for (long i = 0; i < Count; i++)
            {
                while (!writer.TryWrite(i))
                {
                    Thread.SpinWait(1);
                }
            }
        });
        producer.Start();
        long expected = 0;
        while (expected < Count)
        {
            if (reader.TryRead(out long item))
            {
                Assert.Equal(expected++, item);
            }
            else
            {
                Thread.SpinWait(1);
            }
        }

        JoinOrAbandon([producer], segment);
        Assert.Equal(Count, reader.Header.Read);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(1000)]
    public void Mpmc_holds_exactly_its_capacity_in_order(int capacity)
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, capacity, out _, out _);
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < capacity; i++)
            {
                Assert.Equal(RingStatus.Success, ring.TryWrite(i + (round * 10_000L)));
            }

            Assert.Equal(RingStatus.Full, ring.TryWrite(-1));
            Assert.Equal(capacity, ring.Count);
            Assert.True(ring.TryPeek(out long first));
            Assert.Equal(round * 10_000L, first);
            for (int i = 0; i < capacity; i++)
            {
                Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
                Assert.Equal(i + (round * 10_000L), item);
            }

            Assert.Equal(RingStatus.Empty, ring.TryRead(out _));
            Assert.False(ring.TryPeek(out _));
        }
    }

    [Fact]
    public void Mpmc_wraps_around_many_times()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 3, out _, out _);
        long next = 0;
        long expected = 0;
        for (int round = 0; round < 10_000; round++)
        {
            int n = (round % 3) + 1;
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(RingStatus.Success, ring.TryWrite(next++));
            }

            for (int i = 0; i < n; i++)
            {
                Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
                Assert.Equal(expected++, item);
            }
        }

        Assert.Equal(next, ring.Header.Written);
        Assert.Equal(next, ring.Header.Read);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Mpmc_stress_delivers_every_item_once_and_in_each_writers_order(int capacity)
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, capacity, out _, out _);
        const int Writers = 3;
        const int Readers = 3;
        const int PerWriter = 20_000;
        var seen = new int[Writers * PerWriter];
        long readCount = 0;
        long maxCount = 0;
        var threads = new List<Thread>();
        for (int w = 0; w < Writers; w++)
        {
            int id = w;
            threads.Add(new Thread(() =>
            {
                for (long i = 0; i < PerWriter; i++)
                {
                    while (ring.TryWrite((id * (long)PerWriter) + i) != RingStatus.Success)
                    {
                        Thread.Yield();
                    }
                }
            }));
        }

        string? failure = null;
        for (int r = 0; r < Readers; r++)
        {
            threads.Add(new Thread(() =>
            {
                var last = new long[Writers];
                Array.Fill(last, -1);
                while (Interlocked.Read(ref readCount) < Writers * PerWriter)
                {
                    if (ring.TryRead(out long item) != RingStatus.Success)
                    {
                        Thread.Yield();
                        continue;
                    }

                    Interlocked.Increment(ref readCount);
                    Interlocked.Increment(ref seen[item]);
                    int writer = (int)(item / PerWriter);
                    if (item % PerWriter <= last[writer])
                    {
                        failure = $"writer {writer}'s items came out of order: {item % PerWriter} after {last[writer]}";
                    }

                    last[writer] = item % PerWriter;
                    long count = ring.Count;
                    if (count > Interlocked.Read(ref maxCount))
                    {
                        Interlocked.Exchange(ref maxCount, count);
                    }
                }
            }));
        }

        threads.ForEach(t => t.Start());
        JoinOrAbandon(threads, segment);
        Assert.Null(failure);
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.True(maxCount <= capacity);
        Assert.Equal(Writers * (long)PerWriter, ring.Header.Written);
        Assert.Equal(Writers * (long)PerWriter, ring.Header.Read);
        Assert.Equal(0, ring.Count);
    }

    [Theory]
    [InlineData(BoundedChannelFullMode.DropOldest, 1)]
    [InlineData(BoundedChannelFullMode.DropOldest, 3)]
    [InlineData(BoundedChannelFullMode.DropNewest, 1)]
    [InlineData(BoundedChannelFullMode.DropNewest, 3)]
    [InlineData(BoundedChannelFullMode.DropWrite, 1)]
    [InlineData(BoundedChannelFullMode.DropWrite, 3)]
    public void Drop_modes_keep_what_the_BCL_channel_keeps(BoundedChannelFullMode mode, int capacity)
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, capacity, out _, out _);
        var droppedByBcl = new List<long>();
        Channel<long> oracle = Channel.CreateBounded<long>(new BoundedChannelOptions(capacity) { FullMode = mode }, droppedByBcl.Add);
        var droppedByRing = new List<long>();
        for (long i = 0; i < 10; i++)
        {
            Assert.True(oracle.Writer.TryWrite(i));
            WriteWithMode(ring, i, mode, droppedByRing);
        }

        Assert.Equal(droppedByBcl, droppedByRing);
        var kept = new List<long>();
        while (ring.TryRead(out long item) == RingStatus.Success)
        {
            kept.Add(item);
        }

        var expected = new List<long>();
        while (oracle.Reader.TryRead(out long item))
        {
            expected.Add(item);
        }

        Assert.Equal(expected, kept);
        Assert.Equal(10 - capacity, ring.Header.Dropped);
    }

    [Theory]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Drop_modes_after_the_ring_wrapped_match_the_BCL(BoundedChannelFullMode mode)
    {
        // The contract's case: capacity 3, write 1 and read it, then write 2, 3, 4, 5 (DropNewest reads 2, 3, 5).
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 3, out _, out _);
        Channel<long> oracle = Channel.CreateBounded<long>(new BoundedChannelOptions(3) { FullMode = mode });
        var dropped = new List<long>();
        for (int lap = 0; lap < 5; lap++)
        {
            WriteWithMode(ring, 1, mode, dropped);
            Assert.Equal(RingStatus.Success, ring.TryRead(out _));
        }

        for (long i = 2; i <= 5; i++)
        {
            Assert.True(oracle.Writer.TryWrite(i));
            WriteWithMode(ring, i, mode, dropped);
        }

        var kept = new List<long>();
        while (ring.TryRead(out long item) == RingStatus.Success)
        {
            kept.Add(item);
        }

        Assert.Equal(oracle.Reader.ReadAllAsync().ToBlockingEnumerable().Take(3), kept);
    }

    [Theory]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Drop_modes_under_concurrency_account_for_every_item_exactly_once(BoundedChannelFullMode mode)
    {
        SharedSegment segment = NewSegment("ring");
        const int Capacity = 4;
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, Capacity, out _, out _);
        const int Writers = 2;
        const int Readers = 2;
        const int PerWriter = 20_000;
        var fate = new int[Writers * PerWriter]; // +1 read, +1000 dropped
        int writersDone = 0;
        long maxCount = 0;
        var threads = new List<Thread>();
        for (int w = 0; w < Writers; w++)
        {
            int id = w;
            threads.Add(new Thread(() =>
            {
                var dropped = new List<long>();
                for (long i = 0; i < PerWriter; i++)
                {
                    WriteWithMode(ring, (id * (long)PerWriter) + i, mode, dropped);
                    foreach (long d in dropped)
                    {
                        Interlocked.Add(ref fate[d], 1000);
                    }

                    dropped.Clear();
                    long count = ring.Count;
                    if (count > Interlocked.Read(ref maxCount))
                    {
                        Interlocked.Exchange(ref maxCount, count);
                    }
                }

                Interlocked.Increment(ref writersDone);
            }));
        }

        for (int r = 0; r < Readers; r++)
        {
            threads.Add(new Thread(() =>
            {
                while (true)
                {
                    bool done = Volatile.Read(ref writersDone) == Writers;
                    RingStatus status = ring.TryRead(out long item);
                    if (status == RingStatus.Success)
                    {
                        Interlocked.Increment(ref fate[item]);
                    }
                    else if (done && status == RingStatus.Empty)
                    {
                        return;
                    }
                    else
                    {
                        Thread.Yield();
                    }
                }
            }));
        }

        threads.ForEach(t => t.Start());
        JoinOrAbandon(threads, segment);
        Assert.All(fate, f => Assert.True(f is 1 or 1000, $"an item was read or dropped {f} (1 = read once, 1000 = dropped once)"));
        long dropped = fate.Count(f => f == 1000);
        Assert.Equal(dropped, ring.Header.Dropped);
        Assert.Equal(fate.Length - dropped, ring.Header.Read);
        Assert.Equal(ring.Header.Read + ring.Header.Dropped, ring.Header.Written + (mode == BoundedChannelFullMode.DropWrite ? dropped : 0));
        Assert.True(maxCount <= Capacity);
    }

    [Fact]
    public void Completion_record_round_trips_and_the_first_completer_wins()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out long length);
        RingHeader other = MpmcRing<long>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner).Header;
        Assert.Equal(RingCompletionState.Open, other.ReadCompletion().State);
        Assert.False(other.IsCompleted);
        string message = "bad thing: é€😀 " + new string('x', 2000);
        Assert.True(ring.Header.TryComplete(segment.Owner, new TimeoutException(message)));
        Assert.False(ring.Header.TryComplete(segment.Owner, null));
        RingCompletion completion = other.ReadCompletion();
        Assert.True(other.IsCompleted);
        Assert.Equal(RingCompletionState.Faulted, completion.State);
        Assert.Equal(typeof(TimeoutException).FullName, completion.ExceptionType);
        Assert.StartsWith("bad thing: é€😀 xxx", completion.Message, StringComparison.Ordinal);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(completion.Message!) <= RingLayout.MaxMessageBytes);
        Assert.DoesNotContain('\uFFFD', completion.Message!);

        MpmcRing<long> canceled = RingBlocks.Mpmc(segment, 4, out _, out _);
        Assert.True(canceled.Header.TryComplete(segment.Owner, new OperationCanceledException("stop")));
        Assert.Equal(new RingCompletion(RingCompletionState.Canceled, typeof(OperationCanceledException).FullName, "stop"), canceled.Header.ReadCompletion());

        SpscRing<long> clean = RingBlocks.Spsc(segment, 4, out _);
        Assert.True(clean.Header.TryComplete(segment.Owner, null));
        Assert.Equal(new RingCompletion(RingCompletionState.Completed, null, null), clean.Header.ReadCompletion());
    }

    [Fact]
    public void Attach_refuses_another_shape_or_a_damaged_header()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 5, out long offset, out long length);
        Assert.Throws<InvalidSegmentException>(() => MpmcRing<int>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner));
        Assert.Throws<InvalidSegmentException>(() => SpscRing<long>.Attach(segment.Memory, offset, length, segment.Processes));
        segment.Memory.Int32(offset + RingLayout.CapacityOffset) = 1 << 29;
        Assert.Throws<InvalidSegmentException>(() => MpmcRing<long>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner));
        segment.Memory.Int32(offset + RingLayout.CapacityOffset) = 5;
        segment.Memory.Int64(offset + RingLayout.BlockLengthOffset) = length * 1000;
        Assert.Throws<InvalidSegmentException>(() => MpmcRing<long>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner));
        segment.Memory.Int64(offset + RingLayout.MagicOffset) = 42;
        Assert.Throws<InvalidSegmentException>(() => MpmcRing<long>.Attach(segment.Memory, offset, length, segment.Processes, segment.Owner));
        Assert.NotNull(ring);
    }

    public static TheoryData<string, long> Damage => new()
    {
        { "tail", -1 },
        { "tail", 1L << 62 },
        { "head", -7 },
        { "head", long.MaxValue },
        { "tail-ahead", 1000 },
        { "cell", 0x5555_5555_5555_5555 },
        { "cell-far", 1000 },
        { "completion", 0x7FFF_FFFF },
        { "completion-length", 1 << 20 },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void Mpmc_garbage_in_an_index_sequence_or_record_is_an_exception_not_a_spin(string where, long value)
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out _);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryWrite(i));
        }

        var memory = segment.Memory;
        switch (where)
        {
            case "tail":
                memory.Int64(offset + RingLayout.TailOffset) = value;
                break;
            case "head":
                memory.Int64(offset + RingLayout.HeadOffset) = value;
                break;
            case "tail-ahead":
                memory.Int64(offset + RingLayout.TailOffset) = value;
                break;
            case "cell":
            case "cell-far":
                for (int slot = 0; slot < ring.Header.SlotCount; slot++)
                {
                    memory.Int64(ring.Header.SlotAt(slot)) = where == "cell" ? value : RingLayout.CellWord(slot + value, 0);
                }

                break;
            case "completion":
                Assert.True(ring.Header.TryComplete(segment.Owner, null));
                memory.Int32(offset + RingLayout.CompletionStateOffset) = (int)value;
                break;
            case "completion-length":
                Assert.True(ring.Header.TryComplete(segment.Owner, new InvalidOperationException("x")));
                memory.Int32(offset + RingLayout.CompletionMessageLengthOffset) = (int)value;
                break;
        }

        Exception? error = RingBlocks.RunBounded(() =>
        {
            if (where.StartsWith("completion", StringComparison.Ordinal))
            {
                ring.Header.ReadCompletion();
                return;
            }

            // Each of these must throw; the first that does ends the action.
            ring.TryRead(out _);
            ring.TryWrite(5);
            ring.TryWrite(6);
            ring.TryWrite(7);
            ring.TryWrite(8);
            ring.TryWrite(9);
            _ = ring.Count;
            ring.TryPeek(out _);
        });
        Assert.IsType<InvalidSegmentException>(error);
    }

    [Theory]
    [InlineData("head", -3)]
    [InlineData("head", 100)]
    [InlineData("tail", -1)]
    [InlineData("tail", 1_000_000)]
    public void Spsc_garbage_in_an_index_is_an_exception(string where, long value)
    {
        SharedSegment segment = NewSegment("ring");
        SpscRing<long> ring = RingBlocks.Spsc(segment, 4, out long offset);
        Assert.True(ring.TryWrite(1));
        segment.Memory.Int64(offset + (where == "head" ? RingLayout.HeadOffset : RingLayout.TailOffset)) = value;
        Exception? error = RingBlocks.RunBounded(() =>
        {
            ring.TryRead(out _);
            ring.TryWrite(2);
            ring.TryWrite(3);
            ring.TryWrite(4);
            ring.TryWrite(5);
            ring.TryWrite(6);
            _ = ring.Count;
        });
        Assert.IsType<InvalidSegmentException>(error);
    }

    [Fact]
    public void A_writer_killed_after_claiming_a_cell_is_skipped_and_readers_go_on()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out long length);
        Assert.Equal(RingStatus.Success, ring.TryWrite(100));
        using ChildProcess child = Host("ring-claim", segment.Name, Arg(offset), Arg(length), "write");
        Assert.Equal("claimed pos=1", child.WaitForLine("claimed"));
        Assert.Equal(RingStatus.Success, ring.TryWrite(102));
        Assert.Equal(RingStatus.Success, ring.TryWrite(103));
        Assert.Equal(RingStatus.Full, ring.TryWrite(104));

        Assert.Equal(RingStatus.Success, ring.TryRead(out long first));
        Assert.Equal(100, first);
        Assert.Equal(RingStatus.InFlight, ring.TryRead(out _)); // the claimant lives: it is only slow
        child.Kill();

        Assert.Equal(RingStatus.Success, ring.TryRead(out long next));
        Assert.Equal(102, next);
        Assert.Equal(1, ring.Header.Skipped);
        Assert.Equal(RingStatus.Success, ring.TryRead(out next));
        Assert.Equal(103, next);
        for (long i = 0; i < 100; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryWrite(i));
            Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.Equal(ring.Header.Written, ring.Header.Read + ring.Header.Lost + ring.Count);
    }

    [Fact]
    public void A_reader_killed_after_claiming_a_cell_never_blocks_the_ring_and_its_item_is_counted_lost()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out long length);
        for (long i = 0; i < 4; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryWrite(i));
        }

        using ChildProcess child = Host("ring-claim", segment.Name, Arg(offset), Arg(length), "read");
        Assert.Equal("claimed pos=0", child.WaitForLine("claimed"));
        for (long i = 1; i < 4; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.Equal(RingStatus.Full, ring.TryWrite(4)); // the live reader still holds the cell a lap back
        child.Kill();
        Assert.Equal(RingStatus.Success, ring.TryWrite(4));
        Assert.Equal(1, ring.Header.Lost);
        Assert.Equal(RingStatus.Success, ring.TryRead(out long after));
        Assert.Equal(4, after);
        Assert.Equal(ring.Header.Written, ring.Header.Read + ring.Header.Lost + ring.Count);
    }

    [Fact]
    public void DropNewest_takes_over_the_newest_cell_from_a_writer_killed_before_publishing()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out long length);
        for (long i = 0; i < 3; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryWrite(i));
        }

        using ChildProcess child = Host("ring-claim", segment.Name, Arg(offset), Arg(length), "write");
        Assert.Equal("claimed pos=3", child.WaitForLine("claimed"));
        Assert.Equal(RingStatus.InFlight, ring.TryWrite(99, BoundedChannelFullMode.DropNewest, out _));
        child.Kill();
        Assert.Equal(RingStatus.Success, ring.TryWrite(99, BoundedChannelFullMode.DropNewest, out _));
        Assert.Equal(1, ring.Header.Skipped);
        Assert.Equal(0, ring.Header.Dropped);
        long[] expected = [0, 1, 2, 99];
        foreach (long value in expected)
        {
            Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
            Assert.Equal(value, item);
        }
    }

    [Fact]
    public void A_DropNewest_writer_killed_mid_replace_costs_that_item_and_nothing_else()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 4, out long offset, out long length);
        for (long i = 0; i < 4; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryWrite(i));
        }

        using ChildProcess child = Host("ring-claim", segment.Name, Arg(offset), Arg(length), "replace");
        Assert.Equal("claimed pos=3", child.WaitForLine("claimed"));
        for (long i = 0; i < 3; i++)
        {
            Assert.Equal(RingStatus.Success, ring.TryRead(out long item));
            Assert.Equal(i, item);
        }

        Assert.Equal(RingStatus.InFlight, ring.TryRead(out _));
        child.Kill();
        Assert.Equal(RingStatus.Empty, ring.TryRead(out _));
        Assert.Equal(1, ring.Header.Lost);
        Assert.Equal(RingStatus.Success, ring.TryWrite(7));
        Assert.Equal(RingStatus.Success, ring.TryRead(out long next));
        Assert.Equal(7, next);
        Assert.Equal(ring.Header.Written, ring.Header.Read + ring.Header.Lost + ring.Header.Dropped + ring.Count);
    }

    [Fact]
    public void Mpmc_carries_two_writer_processes_to_two_reader_threads_and_the_completion_back()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 16, out long offset, out long length);
        const int PerWriter = 50_000;
        ChildProcess first = Host("ring-write", segment.Name, Arg(offset), Arg(length), "0", Arg(PerWriter));
        ChildProcess second = Host("ring-write", segment.Name, Arg(offset), Arg(length), Arg(PerWriter), Arg(PerWriter), "complete");
        var seen = new int[2 * PerWriter];
        long received = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            EventCount data = ring.Header.ReadersEvent;
            while (Interlocked.Read(ref received) < 2 * PerWriter)
            {
                RingStatus status = ring.TryRead(out long item);
                if (status == RingStatus.Success)
                {
                    Interlocked.Increment(ref seen[item]);
                    Interlocked.Increment(ref received);
                    continue;
                }

                // Sleep in the kernel until a writer publishes; bounded, as the other reader may take the last item.
                int token = data.PrepareWait();
                if (ring.Count > 0 || Interlocked.Read(ref received) >= 2 * PerWriter)
                {
                    data.CancelWait();
                    continue;
                }

                data.Wait(token, TimeSpan.FromMilliseconds(100));
            }
        })).ToList();
        readers.ForEach(t => t.Start());
        JoinOrAbandon(readers, segment);
        Assert.Equal(0, first.WaitForExit());
        Assert.Equal(0, second.WaitForExit());
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.Equal(2L * PerWriter, ring.Header.Written);
        RingCompletion completion = ring.Header.ReadCompletion();
        Assert.Equal(RingCompletionState.Faulted, completion.State);
        Assert.Equal(typeof(TimeoutException).FullName, completion.ExceptionType);
        Assert.Matches("^writer [0-9]+ gave up$", completion.Message);
    }

    [Fact]
    public void Writers_killed_at_random_points_lose_and_duplicate_nothing_they_published()
    {
        SharedSegment segment = NewSegment("ring");
        MpmcRing<long> ring = RingBlocks.Mpmc(segment, 8, out long offset, out long length);
        const int Rounds = 12;
        const long Range = 1_000_000; // writer r writes r * Range, r * Range + 1, ...
        var random = new Random(8);
        var lastSeen = new long[Rounds];
        Array.Fill(lastSeen, -1);
        long total = 0;

        // Reads until the ring is empty and no live writer holds a cell; checks uniqueness and per-writer order.
        bool ReadOne()
        {
            RingStatus status = ring.TryRead(out long item);
            if (status != RingStatus.Success)
            {
                return false;
            }

            int writer = (int)(item / Range);
            Assert.True(item % Range == lastSeen[writer] + 1, $"writer {writer}: {item % Range} after {lastSeen[writer]} (a loss or a duplicate)");
            lastSeen[writer] = item % Range;
            total++;
            return true;
        }

        for (int round = 0; round < Rounds; round++)
        {
            bool last = round == Rounds - 1;
            const int LastCount = 20_000;
            using ChildProcess writer = Host("ring-write", segment.Name, Arg(offset), Arg(length), Arg(round * Range), Arg(last ? LastCount : Range - 1));
            writer.WaitForLine("ready");
            if (last)
            {
                while (lastSeen[round] < LastCount - 1)
                {
                    if (!ReadOne())
                    {
                        Thread.Yield();
                    }
                }

                Assert.Equal(0, writer.WaitForExit());
                break;
            }

            int killAfter = random.Next(1, 5000);
            while (lastSeen[round] < killAfter)
            {
                if (!ReadOne())
                {
                    Thread.Yield();
                }
            }

            writer.Kill(); // anywhere: between items, mid-claim, mid-publish
            while (ReadOne())
            {
            }
        }

        while (ReadOne())
        {
        }

        Assert.Equal(0, ring.Count);
        // A writer killed between publishing an item and counting it leaves Written one short (the item
        // itself was read once, as checked above): at most one per killed writer.
        Assert.InRange(total - ring.Header.Written, 0, Rounds - 1);
        Assert.Equal(ring.Header.Read, total);
        Assert.Equal(0, ring.Header.Lost);
    }

    [Fact]
    public void Writing_and_reading_allocate_nothing()
    {
        SharedSegment segment = NewSegment("ring");
        SpscRing<long> spsc = RingBlocks.Spsc(segment, 8, out _);
        MpmcRing<long> mpmc = RingBlocks.Mpmc(segment, 8, out _, out _);
        long sum = 0;
        for (int pass = 0; pass < 2; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (long i = 0; i < 10_000; i++)
            {
                spsc.TryWrite(i);
                spsc.TryRead(out long a);
                mpmc.TryWrite(i);
                mpmc.TryRead(out long b);
                mpmc.TryWrite(i, BoundedChannelFullMode.DropOldest, out long c);
                sum += a + b + c;
            }

            if (pass == 1)
            {
                Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            }
        }

        Assert.True(sum > 0);
    }

    internal static void WriteWithMode(MpmcRing<long> ring, long item, BoundedChannelFullMode mode, List<long> dropped)
    {
        var spinner = default(SpinWait);
        while (true)
        {
            switch (ring.TryWrite(item, mode, out long gone))
            {
                case RingStatus.Success:
                    return;
                case RingStatus.Replaced:
                case RingStatus.DroppedItem:
                    dropped.Add(gone);
                    return;
                case RingStatus.Evicted:
                    dropped.Add(gone);
                    break; // write again
                default:
                    spinner.SpinOnce(sleep1Threshold: -1); // Full (not in these modes) or InFlight: a peer is mid-operation
                    break;
            }
        }
    }

    private static string Arg(long value) => value.ToString(CultureInfo.InvariantCulture);
}
