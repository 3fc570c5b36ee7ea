using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Rings;
using SharedMemChannels.Tests.Infrastructure;

#pragma warning disable CA2012 // Use ValueTasks correctly: some ValueTasks are looked at before they are awaited, on purpose.

namespace SharedMemChannels.Tests;

/// <summary>
/// Prioritized channels (<see cref="SharedChannel.CreateUnboundedPrioritized{T}(SharedSegment, string, SharedChannelOptions, IComparer{T})"/>)
/// in one process: the order against the BCL's prioritized channel (the oracle), the heap growing and
/// shrinking, comparers (their identity checked on open, one that throws), opening as the right and wrong
/// kind, no allocation in steady state, memory given back. Crashes and damage: <c>PrioritizedChannelCrashTests</c>;
/// the contract: <c>PrioritizedChannelConformanceTests</c>.
/// </summary>
public sealed class PrioritizedChannelTests : SegmentTest
{
    private (SharedSegment Segment, string Name, SharedChannel<long> Channel) NewChannel(SharedChannelOptions? options = null, IComparer<long>? comparer = null, long capacity = 1 << 20, long max = 64 << 20)
    {
        SharedSegment segment = NewSegment("prio", capacity, max);
        string name = NewName("p");
        return (segment, name, Track(SharedChannel.CreateUnboundedPrioritized(segment, name, options ?? new SharedChannelOptions { ChunkCapacity = 4 }, comparer)));
    }

    internal static PriorityRing<long> RingOf(SharedChannel<long> channel) => (PriorityRing<long>)channel.Core.Ring;

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    private sealed class Descending : IComparer<long>
    {
        public int Compare(long x, long y) => y.CompareTo(x);
    }

    private sealed class Throwing : IComparer<long>
    {
        public bool Fail { get; set; }

        public int Compare(long x, long y) => Fail ? throw new FormatException("no order today") : x.CompareTo(y);
    }

    // ---------------------------------------------------------------- order

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    public void Random_writes_and_reads_come_out_as_from_the_BCL_prioritized_channel(int seed, bool descending)
    {
        IComparer<long>? comparer = descending ? new Descending() : null;
        (_, _, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 2 }, comparer);
        Channel<long> oracle = Channel.CreateUnboundedPrioritized(new UnboundedPrioritizedChannelOptions<long> { Comparer = comparer });
        var random = new Random(seed);
        var ours = new List<long>();
        var theirs = new List<long>();
        int peakCount = 0;
        for (int i = 0; i < 20_000; i++)
        {
            // Phases that fill and drain, so the array doubles and halves many times.
            bool write = (i / 2_000) % 2 == 0 ? random.Next(4) != 0 : random.Next(4) == 0;
            if (write)
            {
                long value = random.Next(-500, 500);
                Assert.True(channel.Writer.TryWrite(value));
                Assert.True(oracle.Writer.TryWrite(value));
            }
            else
            {
                bool read = channel.Reader.TryRead(out long a);
                Assert.Equal(oracle.Reader.TryRead(out long b), read);
                if (read)
                {
                    ours.Add(a);
                    theirs.Add(b);
                }
            }

            Assert.Equal(oracle.Reader.Count, channel.Reader.Count);
            peakCount = Math.Max(peakCount, channel.Reader.Count);
            if (i % 97 == 0)
            {
                Assert.Equal(oracle.Reader.TryPeek(out long pb), channel.Reader.TryPeek(out long pa));
                Assert.Equal(pb, pa);
                RingOf(channel).CheckedItemsForTest();
            }
        }

        Assert.Equal(theirs, ours);
        Assert.True(peakCount > 500, $"the heap peaked at {peakCount} items");
        Assert.True(RingOf(channel).ArrayCapacity < peakCount, "the array shrank after draining");
        ours.Clear();
        theirs.Clear();
        while (channel.Reader.TryRead(out long a))
        {
            ours.Add(a);
        }

        while (oracle.Reader.TryRead(out long b))
        {
            theirs.Add(b);
        }

        Assert.Equal(theirs, ours);
    }

    [Fact]
    public async Task Peek_count_completion_and_a_pending_read_follow_the_smallest_item()
    {
        (_, _, SharedChannel<long> channel) = NewChannel();
        Assert.True(channel.IsUnbounded);
        Assert.Equal("default", channel.ComparerIdentity);
        Assert.True(channel.Reader.CanPeek);
        Assert.True(channel.Reader.CanCount);
        Assert.False(channel.Reader.TryPeek(out _));
        ValueTask<long> pending = channel.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.True(channel.Writer.TryWrite(7));
        Assert.Equal(7, await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

        foreach (long v in new long[] { 5, 3, 9, 3, 1 })
        {
            await channel.Writer.WriteAsync(v);
        }

        Assert.True(channel.Reader.TryPeek(out long head));
        Assert.Equal(1, head);
        Assert.Equal(5, channel.Reader.Count);
        channel.Writer.Complete();
        Assert.False(channel.Writer.TryWrite(0));
        Assert.False(channel.Reader.Completion.IsCompleted);
        var read = new List<long>();
        await foreach (long v in channel.Reader.ReadAllAsync())
        {
            read.Add(v);
        }

        Assert.Equal([1, 3, 3, 5, 9], read);
        await channel.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(30));
    }

    // ---------------------------------------------------------------- comparers and opening

    [Fact]
    public void Every_process_must_open_with_the_comparer_the_channel_was_made_with()
    {
        ISharedComparer<long> byDeadline = SharedComparer.Create<long>("deadline-v1", (x, y) => x.CompareTo(y));
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(comparer: byDeadline);
        Assert.Equal("deadline-v1", channel.ComparerIdentity);

        using (SharedChannel<long> same = SharedChannel.OpenPrioritized(segment, name, SharedComparer.Create<long>("deadline-v1", (x, y) => x.CompareTo(y))))
        {
            Assert.Equal("deadline-v1", same.ComparerIdentity);
            Assert.True(same.Writer.TryWrite(3));
        }

        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenPrioritized(segment, name, SharedComparer.Create<long>("deadline-v2", (x, y) => x.CompareTo(y))));
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenPrioritized<long>(segment, name, null));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, name)); // Comparer<long>.Default is not deadline-v1
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenOrCreateUnboundedPrioritized(segment, name, new SharedChannelOptions { ChunkCapacity = 4 }, new Descending()));
        using SharedChannel<long> again = SharedChannel.OpenOrCreateUnboundedPrioritized(segment, name, new SharedChannelOptions { ChunkCapacity = 4 }, byDeadline);
        Assert.True(again.Reader.TryRead(out long three));
        Assert.Equal(3, three);

        // A comparer without an identity is known by its type; Comparer<T>.Default and null are "default".
        string typed = NewName("t");
        using SharedChannel<long> byType = SharedChannel.CreateUnboundedPrioritized(segment, typed, new SharedChannelOptions(), new Descending());
        Assert.Equal("type:" + typeof(Descending), byType.ComparerIdentity);
        using (SharedChannel.OpenPrioritized(segment, typed, new Descending()))
        {
        }

        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenPrioritized(segment, typed, Comparer<long>.Create((x, y) => y.CompareTo(x))));
        string plain = NewName("d");
        using SharedChannel<long> byDefault = SharedChannel.CreateUnboundedPrioritized<long>(segment, plain, new SharedChannelOptions());
        using SharedChannel<long> opened = SharedChannel.Open<long>(segment, plain);
        using SharedChannel<long> openedDefault = SharedChannel.OpenPrioritized(segment, plain, Comparer<long>.Default);
        Assert.Equal("default", opened.ComparerIdentity);

        Assert.Throws<ArgumentException>(() => SharedComparer.Create<long>("default", (x, y) => 0));
        Assert.Throws<ArgumentException>(() => SharedComparer.Create<long>(" ", (x, y) => 0));
        Assert.Throws<ArgumentNullException>(() => SharedComparer.Create<long>("x", null!));
    }

    [Fact]
    public void Channels_of_another_kind_and_other_options_are_refused()
    {
        var options = new SharedChannelOptions { ChunkCapacity = 16, SingleReader = true };
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(options);
        Assert.True(channel.SingleReader);
        Assert.Equal(int.MaxValue, channel.Capacity);
        Assert.Throws<InvalidOperationException>(() => SharedChannel.CreateUnboundedPrioritized<long>(segment, name, options));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnboundedPrioritized<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 8, SingleReader = true }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnboundedPrioritized<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 16 }));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnbounded<long>(segment, name, options));
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<long>(segment, name, new SharedChannelOptions(16) { SingleReader = true }));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<int>(segment, name));

        string unbounded = NewName("u");
        using SharedChannel<long> u = SharedChannel.CreateUnbounded<long>(segment, unbounded, new SharedChannelOptions());
        Assert.Null(u.ComparerIdentity);
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateUnboundedPrioritized<long>(segment, unbounded, new SharedChannelOptions()));
        Assert.Throws<InvalidOperationException>(() => SharedChannel.OpenPrioritized<long>(segment, unbounded, null));
        string bounded = NewName("b");
        using SharedChannel<long> b = SharedChannel.CreateBounded<long>(segment, bounded, new SharedChannelOptions(4));
        Assert.Throws<InvalidOperationException>(() => SharedChannel.OpenPrioritized<long>(segment, bounded, null));
        Assert.Throws<KeyNotFoundException>(() => SharedChannel.OpenPrioritized<long>(segment, NewName("none"), null));

        Assert.Throws<ArgumentNullException>(() => SharedChannel.CreateUnboundedPrioritized<long>(segment, "x", null!));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateUnboundedPrioritized<long>(segment, "x", new SharedChannelOptions(5)));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateUnboundedPrioritized<long>(segment, "x", new SharedChannelOptions { FullMode = BoundedChannelFullMode.DropOldest }));
        Assert.False(SharedChannel.Exists(segment, "x"));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateUnboundedPrioritized<long>(segment, "bad name!", new SharedChannelOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedChannel.CreateUnboundedPrioritized<Page>(segment, "huge", new SharedChannelOptions { ChunkCapacity = SharedChannelOptions.MaxChunkCapacity }));
        Assert.False(SharedChannel.Exists(segment, "huge"));
    }

    [Fact]
    public void A_comparer_that_throws_fails_that_write_or_read_and_leaves_the_channel_as_it_was()
    {
        var comparer = new Throwing();
        (_, _, SharedChannel<long> channel) = NewChannel(comparer: comparer);
        for (long v = 10; v > 0; v--)
        {
            Assert.True(channel.Writer.TryWrite(v));
        }

        comparer.Fail = true;
        Assert.Throws<FormatException>(() => channel.Writer.TryWrite(0));
        Assert.Throws<FormatException>(() => channel.Reader.TryRead(out _));
        Assert.Equal(10, channel.Reader.Count);
        comparer.Fail = false;
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), RingOf(channel).CheckedItemsForTest().Order());
        var read = new List<long>();
        while (channel.Reader.TryRead(out long v))
        {
            read.Add(v);
        }

        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), read);
    }

    // ---------------------------------------------------------------- memory

    [Fact]
    public void Steady_state_allocates_nothing_and_the_heap_gives_its_memory_back()
    {
        SharedSegment segment = NewSegment("prio");
        // A first channel made and disposed: the directory keeps what it grew by.
        SharedChannel.CreateUnboundedPrioritized<long>(segment, NewName("w"), new SharedChannelOptions()).Dispose();
        long baseline = Used(segment);
        string name = NewName("p");
        SharedChannel<long> channel = SharedChannel.CreateUnboundedPrioritized<long>(segment, name, new SharedChannelOptions { ChunkCapacity = 8 });
        var random = new Random(5);
        Churn(channel, random, 5_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long sum = Churn(channel, random, 20_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.True(sum != 0);

        for (int i = 0; i < 3_000; i++)
        {
            Assert.True(channel.Writer.TryWrite(random.Next()));
        }

        long full = Used(segment);
        while (channel.Reader.TryRead(out _))
        {
        }

        Assert.True(Used(segment) < full - (3_000 * sizeof(long) / 2), "the array shrank as the heap drained");
        channel.Dispose();
        Assert.False(SharedChannel.Exists(segment, name));
        Assert.Equal(baseline, Used(segment));
    }

    /// <summary>Writes two random items and reads one, then drains to a few: the array doubles and halves.</summary>
    private static long Churn(SharedChannel<long> channel, Random random, int rounds)
    {
        long sum = 0;
        for (int i = 0; i < rounds; i++)
        {
            channel.Writer.TryWrite(random.Next(1, 1000));
            channel.Writer.TryWrite(random.Next(1, 1000));
            channel.Reader.TryRead(out long item);
            sum += item;
            if (i % 200 == 199)
            {
                while (channel.Reader.Count > 3 && channel.Reader.TryRead(out item))
                {
                    sum += item;
                }
            }
        }

        return sum;
    }

    [Fact]
    public async Task At_the_end_of_the_segment_writes_fail_without_waiting_and_succeed_again_after_reads()
    {
        SharedSegment segment = NewSegment("prio", 1 << 20, 1 << 20);
        SharedChannel<Page> channel = Track(SharedChannel.CreateUnboundedPrioritized<Page>(segment, NewName("p"), new SharedChannelOptions { ChunkCapacity = 2 }));
        int written = 0;
        while (channel.Writer.TryWrite(new Page { Key = written }))
        {
            written++;
            Assert.True(written < 1_000, "a 1 MiB segment cannot hold 1,000 pages of 4 KiB");
        }

        Assert.True(written > 8);
        await Assert.ThrowsAsync<OutOfSharedMemoryException>(async () => await channel.Writer.WriteAsync(default));
        for (int i = 0; i < written / 2 + 1; i++)
        {
            Assert.True(channel.Reader.TryRead(out Page page));
            Assert.Equal(i, page.Key);
        }

        Assert.True(channel.Writer.TryWrite(new Page { Key = -1 }));
        Assert.True(channel.Reader.TryRead(out Page smallest));
        Assert.Equal(-1, smallest.Key);
    }

    // ---------------------------------------------------------------- inspection and layout

    [Fact]
    public void Inspection_and_shmc_inspect_show_a_prioritized_channel_with_its_comparer_and_heap()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(new SharedChannelOptions { ChunkCapacity = 16 }, SharedComparer.Create<long>("by-deadline", (x, y) => x.CompareTo(y)));
        for (long i = 0; i < 40; i++)
        {
            Assert.True(channel.Writer.TryWrite(40 - i));
        }

        Assert.True(channel.Reader.TryRead(out long one));
        Assert.Equal(1, one);
        ChannelReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.Equal(name, report.Name);
        Assert.Equal("prioritized", report.Ring);
        Assert.True(report.IsUnbounded);
        Assert.Equal("by-deadline", report.ComparerIdentity);
        Assert.Equal(64, report.HeapCapacity); // 16, 32, 64
        Assert.Equal(64 * sizeof(long), report.ChunkBytes);
        Assert.Equal(39, report.Count);
        Assert.Equal(40, report.Written);
        Assert.Equal(1, report.Read);

        ChildProcess shmc = Shmc("inspect", segment.Name);
        Assert.Equal(0, shmc.WaitForExit());
        Assert.Contains("prioritized by by-deadline", shmc.Transcript, StringComparison.Ordinal);
        Assert.Contains("room for 64", shmc.Transcript, StringComparison.Ordinal);
    }

    [Fact]
    public void The_layout_keeps_each_part_on_its_lines_and_every_word_aligned()
    {
        const int line = RingLayout.LineSize;
        const int base16 = RingLayout.SlotsOffset;
        int[] line16 = [PriorityLayout.LockOffset, PriorityLayout.InitialCapacityOffset, PriorityLayout.ArrayOffset, PriorityLayout.ArrayCapacityOffset, PriorityLayout.ResizesOffset, PriorityLayout.ComparerFingerprintOffset, PriorityLayout.ComparerIdentityLengthOffset];
        int[] line17 = [PriorityLayout.IntentOpOffset, PriorityLayout.IntentHoleOffset, PriorityLayout.IntentTargetOffset, PriorityLayout.IntentPathOffset, PriorityLayout.IntentIndexOffset, PriorityLayout.IntentNewArrayOffset, PriorityLayout.IntentOldArrayOffset, PriorityLayout.IntentCapacityOffset];
        Assert.All(line16, o => Assert.Equal(16, o / line));
        Assert.All(line17, o => Assert.Equal(17, o / line));
        Assert.Equal(line16.Length, line16.Distinct().Count());
        Assert.Equal(line17.Length, line17.Distinct().Count());
        Assert.All(line16.Skip(2).Concat(line17.Skip(1)), o => Assert.Equal(0, o % 8)); // 64-bit words
        Assert.Equal(16 * line, base16);
        Assert.Equal(18 * line, PriorityLayout.ComparerIdentityOffset);
        Assert.Equal(PriorityLayout.ComparerIdentityOffset + PriorityLayout.ComparerIdentityCapacity, PriorityLayout.IntentItemOffset);
        Assert.Equal(PriorityLayout.IntentItemOffset + 8, RingLayout.RequiredBytes(RingKind.Prioritized, 8, 1));
        Assert.Equal(PriorityLayout.IntentItemOffset + 16, RingLayout.RequiredBytes(RingKind.Prioritized, 9, 1)); // the element rounded to 8
    }

    /// <summary>A 4 KiB element ordered by its key (Comparer&lt;Page&gt;.Default).</summary>
    internal struct Page : IComparable<Page>
    {
        public long Key;
#pragma warning disable CS0649 // never assigned: only its size matters
        public Bytes Data;
#pragma warning restore CS0649

        public readonly int CompareTo(Page other) => Key.CompareTo(other.Key);

        [System.Runtime.CompilerServices.InlineArray(4088)]
        public struct Bytes
        {
            private byte _first;
        }
    }
}
