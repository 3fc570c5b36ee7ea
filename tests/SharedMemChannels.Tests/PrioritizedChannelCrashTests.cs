using System.Globalization;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;
using SharedMemChannels.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharedMemChannels.Tests;

/// <summary>
/// Prioritized channels whose users die in the middle of an update, and whose memory is damaged: the
/// heap's intent record lets the next holder of its lock finish any insert, remove or resize, so nothing
/// committed is lost, nothing is delivered twice, the heap stays in order, and damage is an
/// <see cref="InvalidSegmentException"/>.
/// </summary>
public sealed class PrioritizedChannelCrashTests(ITestOutputHelper output) : SegmentTest
{
    /// <summary>A lock holder that is certainly dead: a slot no process of these tests takes, its last generation.</summary>
    private static readonly uint DeadOwner = OwnerId.From(255, 0x7FFF).Value;

    private (SharedSegment Segment, string Name, SharedChannel<long> Channel) NewChannel(int initialCapacity)
    {
        SharedSegment segment = NewSegment("pcrash", 4 << 20, 64 << 20);
        string name = NewName("p");
        return (segment, name, Track(SharedChannel.CreateUnboundedPrioritized<long>(segment, name, new SharedChannelOptions { ChunkCapacity = initialCapacity })));
    }

    /// <summary>The ring block and the element array as they were after one store of an update.</summary>
    private sealed record Moment(byte[] Ring, long ArrayHandle, long ArrayStart, byte[] Array, int Op);

    /// <summary>
    /// Every store of thousands of inserts and removes, in turn, is the last one a killed holder made: the
    /// channel's memory is put back as that holder left it (ring block and array copied at that store), its
    /// lock names a dead process, and the next operation takes the lock over and repairs the heap, which
    /// then holds exactly the items it must (an insert announced is completed; a remove announced is
    /// completed and counted Lost) in heap order.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_holder_killed_after_any_store_of_an_update_leaves_a_heap_the_next_holder_repairs(int seed)
    {
        (SharedSegment segment, _, SharedChannel<long> channel) = NewChannel(initialCapacity: 4);
        PriorityRing<long> ring = PrioritizedChannelTests.RingOf(channel);
        SegmentMemory memory = segment.Attachment.Memory;
        long root = ring.RootOffset;
        int ringBytes = (int)PriorityRing<long>.RequiredBytes();
        var random = new Random(seed);
        int thread = Environment.CurrentManagedThreadId;
        int killPoints = 0;
        int skipped = 0;

        Moment Capture()
        {
            int op = memory.Int32(root + PriorityLayout.IntentOpOffset);
            if (op == PriorityLayout.IntentResize)
            {
                return new Moment([], 0, 0, [], op); // mid-resize: the array words may disagree for a moment
            }

            (long start, int bytes) = ring.ArrayRangeForTest();
            return new Moment(
                memory.Span(root, ringBytes).ToArray(),
                memory.Int64(root + PriorityLayout.ArrayOffset),
                start,
                bytes == 0 ? [] : memory.Span(start, bytes).ToArray(),
                op);
        }

        void Restore(Moment m)
        {
            m.Ring.CopyTo(memory.Span(root, ringBytes));
            m.Array.CopyTo(memory.Span(m.ArrayStart, m.Array.Length));
        }

        var moments = new List<Moment>();
        PriorityTestHooks.Step = () =>
        {
            if (Environment.CurrentManagedThreadId == thread)
            {
                moments.Add(Capture());
            }
        };
        try
        {
            for (int trial = 0; trial < 800; trial++)
            {
                // Keep between none and about 70 items, so that the array doubles and halves now and then.
                int count = channel.Reader.Count;
                bool insert = count == 0 || (count < 70 && random.Next(2) == 0);
                long value = random.Next(-1000, 1000);
                List<long> expected = [.. ring.CheckedItemsForTest()];
                moments.Clear();
                long lostBefore = channel.Core.Header.Lost;
                if (insert)
                {
                    Assert.True(channel.Writer.TryWrite(value));
                    expected.Add(value);
                }
                else
                {
                    Assert.True(channel.Reader.TryRead(out long smallest));
                    Assert.Equal(expected.Min(), smallest);
                    expected.Remove(smallest);
                }

                expected.Sort();
                Moment end = Capture();
                foreach (Moment m in moments.ToArray())
                {
                    // A moment inside a resize, or before one the update made later, cannot be restored
                    // here: the heap's own blocks (allocated, freed) have moved on. Real kills cover those.
                    if (m.Op == PriorityLayout.IntentResize || m.ArrayHandle != end.ArrayHandle)
                    {
                        skipped++;
                        continue;
                    }

                    Restore(m);
                    memory.Int32(root + PriorityLayout.LockOffset) = (int)DeadOwner;
                    long lost = channel.Core.Header.Lost;
                    List<long> repaired = [.. ring.CheckedItemsForTest()]; // takes the lock over: the repair runs
                    repaired.Sort();
                    Assert.Equal(expected, repaired);
                    Assert.Equal(channel.Reader.Count, repaired.Count);
                    Assert.Equal(insert ? lost : lost + 1, channel.Core.Header.Lost);
                    Assert.Equal(PriorityLayout.IntentNone, memory.Int32(root + PriorityLayout.IntentOpOffset));
                    killPoints++;
                }

                Restore(end);
                Assert.Equal(lostBefore, channel.Core.Header.Lost);
            }
        }
        finally
        {
            PriorityTestHooks.Step = null;
        }

        output.WriteLine($"{killPoints} kill points repaired, {skipped} inside resizes left to the process tests");
        Assert.True(killPoints > 2_000, $"only {killPoints} kill points");
        var drained = new List<long>();
        while (channel.Reader.TryRead(out long item))
        {
            drained.Add(item);
        }

        Assert.Equal(drained.Order(), drained);
    }

    /// <summary>
    /// Child writers and readers stopped at a random store of an insert, a remove or a resize (the heap's
    /// lock held, the update half done) and SIGKILLed there, round after round (SHMC_PRIO_KILL_ROUNDS, 30
    /// by default): after each kill the heap is repaired by the next holder and is in order; in the end
    /// every item whose write returned was read exactly once here or by a child, except at most one per
    /// killed reader (counted Lost: the item its announced remove took), and nothing was read twice.
    /// </summary>
    [Fact]
    public void Writers_and_readers_killed_in_the_middle_of_an_update_lose_nothing_committed_and_deliver_nothing_twice()
    {
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("SHMC_PRIO_KILL_ROUNDS"), CultureInfo.InvariantCulture, out int asked) ? asked : 30;
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(initialCapacity: 2);
        var random = new Random(rounds);
        var committed = new HashSet<long>();
        var maybe = new HashSet<long>(); // written by a writer killed inside that write
        var delivered = new HashSet<long>();
        var duplicates = new List<long>();
        int readerKills = 0;
        int parked = 0;

        void Deliver(long item)
        {
            if (!delivered.Add(item))
            {
                duplicates.Add(item);
            }
        }

        for (int round = 0; round < rounds; round++)
        {
            bool reader = round % 3 == 2 && channel.Reader.Count > 0;
            string step = (random.Next(1, reader ? 600 : 1200)).ToString(CultureInfo.InvariantCulture);
            string id = (round + 1).ToString(CultureInfo.InvariantCulture);
            ChildProcess child = reader
                ? HostOnBackend("prio-reader", segment.Name, "--channel", name, "--count", "80", "--kill-step", step)
                : HostOnBackend("prio-writer", segment.Name, "--channel", name, "--id", id, "--count", "120", "--seed", id, "--kill-step", step);
            string end = child.WaitForLine("end");
            child.Kill();
            bool stopped = end == "end parked";
            parked += stopped ? 1 : 0;
            readerKills += reader && stopped ? 1 : 0;
            foreach (string line in child.Transcript.Split('\n'))
            {
                if (line.StartsWith("got v=", StringComparison.Ordinal))
                {
                    Deliver(long.Parse(line["got v=".Length..].Trim(), CultureInfo.InvariantCulture));
                }
            }

            if (!reader)
            {
                long done = child.Transcript.Split('\n')
                    .Where(l => l.StartsWith("committed n=", StringComparison.Ordinal))
                    .Select(l => long.Parse(l["committed n=".Length..].Trim(), CultureInfo.InvariantCulture))
                    .DefaultIfEmpty(0).Max();
                // The writer's items, rebuilt from its seed: those whose write returned, and the one in flight.
                var priorities = new Random(round + 1);
                for (long n = 0; n <= done && n < 120; n++)
                {
                    long item = ((long)priorities.Next(0, 1024) << 40) | ((long)(round + 1) << 20) | n;
                    (n < done ? committed : maybe).Add(item);
                }
            }

            // The next holder repairs what the killed one left: the heap is in order, the count adds up.
            long[] items = PrioritizedChannelTests.RingOf(channel).CheckedItemsForTest();
            Assert.Equal(items.Length, channel.Reader.Count);
            Assert.Equal(items.Length, items.Distinct().Count());
            output.WriteLine($"round {round}: {(reader ? "reader" : "writer")} {end} at store {step}, {items.Length} items held");
        }

        var drained = new List<long>();
        while (channel.Reader.TryRead(out long item))
        {
            drained.Add(item);
            Deliver(item);
        }

        Assert.Equal(drained.Order(), drained);
        Assert.Empty(duplicates);
        Assert.All(delivered, item => Assert.True(committed.Contains(item) || maybe.Contains(item), $"item {item:x} was never written"));
        long lost = channel.Core.Header.Lost;
        int missing = committed.Count(item => !delivered.Contains(item));
        output.WriteLine($"{parked} of {rounds} children killed inside an update ({readerKills} readers); {committed.Count} committed, {missing} missing, Lost {lost}");
        Assert.True(missing <= lost, $"{missing} committed items were never read, but only {lost} are counted Lost");
        Assert.InRange(lost, 0, readerKills);
        Assert.True(parked > rounds / 2, $"only {parked} of {rounds} children were stopped inside an update");
    }

    /// <summary>
    /// Garbage in any word of the heap's descriptor, intent record or counters (the lock word only ever
    /// names a dead process: a live owner in it would be a lock held) makes each operation either work or
    /// throw <see cref="InvalidSegmentException"/>, never read outside the segment, never hang; disposing
    /// the damaged channel never throws.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Garbage_in_the_heap_descriptor_intent_record_and_counters_is_an_InvalidSegmentException(int seed)
    {
        var random = new Random(seed);
        SharedSegment segment = NewSegment("pdmg", 4 << 20, 64 << 20);
        long[] nasty = [-1, long.MinValue, long.MaxValue, 1L << 40, 1L << 62, 3, 7, 0x7FFF_FFFF, 4096, 1 << 20];
        int[] words =
        [
            RingLayout.TailOffset, RingLayout.HeadOffset, PriorityLayout.ArrayOffset, PriorityLayout.ArrayCapacityOffset,
            PriorityLayout.IntentOpOffset, PriorityLayout.IntentHoleOffset, PriorityLayout.IntentTargetOffset, PriorityLayout.IntentPathOffset,
            PriorityLayout.IntentIndexOffset, PriorityLayout.IntentNewArrayOffset, PriorityLayout.IntentOldArrayOffset, PriorityLayout.IntentCapacityOffset,
        ];
        int refused = 0;
        for (int trial = 0; trial < 60; trial++)
        {
            SharedChannel<long> channel = SharedChannel.CreateUnboundedPrioritized<long>(segment, NewName("d"), new SharedChannelOptions { ChunkCapacity = 4 });
            try
            {
                int items = random.Next(0, 40);
                for (int i = 0; i < items; i++)
                {
                    Assert.True(channel.Writer.TryWrite(random.Next(1000)));
                }

                PriorityRing<long> ring = PrioritizedChannelTests.RingOf(channel);
                SegmentMemory memory = segment.Attachment.Memory;
                long root = ring.RootOffset;
                int word = words[random.Next(words.Length)];
                long value = random.Next(3) == 0 ? random.NextInt64() : nasty[random.Next(nasty.Length)];
                if (word == PriorityLayout.IntentOpOffset)
                {
                    memory.Int32(root + word) = (int)value;
                }
                else
                {
                    memory.Int64(root + word) = value;
                }

                if (random.Next(2) == 0)
                {
                    // A dead holder: the next operation runs the repair on the damaged intent record.
                    memory.Int32(root + PriorityLayout.IntentOpOffset) = random.Next(0, 5);
                    memory.Int32(root + PriorityLayout.LockOffset) = (int)DeadOwner;
                }

                foreach (Action op in new Action[]
                {
                    () => channel.Writer.TryWrite(5),
                    () => channel.Reader.TryRead(out _),
                    () => channel.Reader.TryPeek(out _),
                    () => _ = channel.Reader.Count,
                    () => ring.CheckedItemsForTest(),
                })
                {
                    try
                    {
                        op();
                    }
                    catch (InvalidSegmentException)
                    {
                        refused++;
                    }
                }
            }
            finally
            {
                channel.Dispose(); // never throws, whatever the damage
            }
        }

        output.WriteLine($"{refused} operations refused as damage");
        Assert.True(refused > 50, $"only {refused} operations saw the damage");
    }

    [Fact]
    public void A_damaged_shape_or_comparer_fingerprint_is_refused_on_open()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(initialCapacity: 8);
        Assert.True(channel.Writer.TryWrite(1));
        SegmentMemory memory = segment.Attachment.Memory;
        long root = PrioritizedChannelTests.RingOf(channel).RootOffset;
        memory.Int32(root + PriorityLayout.InitialCapacityOffset) = 9;
        Assert.Throws<InvalidSegmentException>(() => SharedChannel.Open<long>(segment, name));
        memory.Int32(root + PriorityLayout.InitialCapacityOffset) = 8;
        memory.Int64(root + PriorityLayout.ComparerFingerprintOffset) ^= 1;
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, name));
        memory.Int64(root + PriorityLayout.ComparerFingerprintOffset) ^= 1;
        using SharedChannel<long> opened = SharedChannel.Open<long>(segment, name);
        Assert.True(opened.Reader.TryRead(out long one));
        Assert.Equal(1, one);
    }

    /// <summary>
    /// Two writer processes fill the channel at once with keys of random priority, a reader process takes
    /// some, and this process reads the rest: each reader gets the smallest key there at each read, so
    /// what this process drains is sorted, and the keys read by anyone are exactly the keys written.
    /// </summary>
    [Fact]
    public void Items_written_by_two_processes_at_once_are_read_smallest_first_in_a_third()
    {
        (SharedSegment segment, string name, SharedChannel<long> channel) = NewChannel(initialCapacity: 2);
        ChildProcess first = HostOnBackend("prio-writer", segment.Name, "--channel", name, "--id", "1", "--count", "400", "--seed", "1");
        ChildProcess second = HostOnBackend("prio-writer", segment.Name, "--channel", name, "--id", "2", "--count", "400", "--seed", "2");
        Assert.Equal("end done", first.WaitForLine("end"));
        Assert.Equal("end done", second.WaitForLine("end"));
        Assert.Equal(0, first.WaitForExit());
        Assert.Equal(0, second.WaitForExit());
        Assert.Equal(800, channel.Reader.Count);

        ChildProcess reader = HostOnBackend("prio-reader", segment.Name, "--channel", name, "--count", "300");
        Assert.Equal("end done", reader.WaitForLine("end"));
        Assert.Equal(0, reader.WaitForExit());
        long[] readThere = [.. reader.Transcript.Split('\n').Where(l => l.StartsWith("got v=", StringComparison.Ordinal)).Select(l => long.Parse(l["got v=".Length..].Trim(), CultureInfo.InvariantCulture))];
        Assert.Equal(300, readThere.Length);
        Assert.Equal(readThere.Order(), readThere);

        var readHere = new List<long>();
        while (channel.Reader.TryRead(out long item))
        {
            readHere.Add(item);
        }

        Assert.Equal(readHere.Order(), readHere);
        Assert.True(readThere[^1] <= readHere[0], "the reader process took the smallest 300");
        var written = new List<long>();
        foreach (long id in new long[] { 1, 2 })
        {
            var priorities = new Random((int)id);
            for (long n = 0; n < 400; n++)
            {
                written.Add(((long)priorities.Next(0, 1024) << 40) | (id << 20) | n);
            }
        }

        Assert.Equal(written.Order(), readThere.Concat(readHere).Order());
    }
}
