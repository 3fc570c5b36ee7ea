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
}
