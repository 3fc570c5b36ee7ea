using System.Globalization;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The shared heap across real processes: stress, kill -9 at random moments, a dead lock holder. Runs once
/// per backend; the children open the segment of the test's backend.
/// </summary>
public abstract class HeapCrossProcessTestsBase : SegmentTest
{
    [Fact]
    public void Processes_times_threads_allocating_and_freeing_keep_the_heap_consistent()
    {
        string name = NewName("stress");
        using SharedSegment segment = CreateSegment(name, NewOptions(capacity: 256 * 1024, max: 512L * 1024 * 1024));
        long baseline = segment.GetHeapStatistics().UsedBytes;
        var children = Enumerable.Range(0, 3)
            .Select(i => HostOnBackend("stress", name, "--threads", "3", "--iterations", "15000", "--seed", (i + 1).ToString(CultureInfo.InvariantCulture)))
            .ToList();
        foreach (ChildProcess child in children)
        {
            string done = child.WaitForLine("done");
            Assert.Equal("0", Field(done, "errors"));
            Assert.Equal(0, child.WaitForExit());
        }

        segment.ValidateHeap();
        HeapStatistics after = segment.GetHeapStatistics();
        Assert.Equal(baseline, after.UsedBytes);
        Assert.DoesNotContain(after.ThreadCaches, c => c.ProcessId != Environment.ProcessId); // returned at detach
        Assert.Single(segment.Processes.Snapshot());
    }

    [Fact]
    public async Task Killing_an_allocating_process_at_random_moments_never_blocks_or_corrupts_the_heap()
    {
        string name = NewName("crash");
        using SharedSegment segment = CreateSegment(name, NewOptions(capacity: 128 * 1024, max: 256L * 1024 * 1024));
        long baseline = segment.GetHeapStatistics().UsedBytes;
        var random = new Random(12345);
        const int Rounds = 50;
        for (int round = 0; round < Rounds; round++)
        {
            ChildProcess child = HostOnBackend("alloc-loop", name, "--threads", "2", "--seed", round.ToString(CultureInfo.InvariantCulture));
            child.WaitForLine("running");
            // A random moment inside the loop: not synchronization, the point is not to know where it is.
            await Task.Delay(random.Next(0, 15));
            child.Kill();

            // The survivor must never block: heap operations right after the kill finish.
            Task survivor = Task.Run(() =>
            {
                for (int i = 0; i < 50; i++)
                {
                    ShmHandle small = segment.Allocate(40);
                    ShmHandle large = segment.Allocate(9000); // the locked path, where a dead holder would be met
                    segment.Free(small);
                    segment.Free(large);
                }
            });
            Assert.True(await Task.WhenAny(survivor, Task.Delay(ChildProcess.DefaultWait)) == survivor, $"round {round}: the survivor blocked");
            await survivor;
        }

        segment.ReclaimDeadProcesses();
        segment.ValidateHeap();
        HeapStatistics after = segment.GetHeapStatistics();
        Assert.Equal(baseline, after.UsedBytes); // every block the dead held came back
        Assert.All(after.ThreadCaches, c => Assert.Equal(Environment.ProcessId, c.ProcessId)); // their caches too
        Assert.True(after.Reclaims >= Rounds);
        Assert.Single(segment.Processes.Snapshot());
    }

    [Fact]
    public async Task A_process_killed_holding_the_heap_lock_is_taken_over_and_the_heap_repaired()
    {
        string name = NewName("lock");
        using SharedSegment segment = CreateSegment(name, NewOptions());
        ChildProcess holder = HostOnBackend("lock-hold", name);
        holder.WaitForLine("locked");

        // A waiter is already blocked on the lock when the holder dies.
        Task<ShmHandle> waiter = Task.Run(() => segment.Allocate(10_000));
        WaitUntil(() => (Volatile.Read(ref segment.Memory.Ref<Heap.HeapControl>(Segments.SegmentLayout.HeapControlOffset).Lock) & 0x8000_0000) != 0, "the waiter sleeps on the lock");
        Assert.False(waiter.IsCompleted);
        holder.Kill();

        ShmHandle handle = await waiter;
        Assert.Equal(10_000, segment.GetSpan(handle).Length);
        segment.ValidateHeap();
        Assert.True(segment.GetHeapStatistics().Recoveries >= 1);
    }

    [Fact]
    public void A_killed_process_loses_its_own_blocks_but_not_those_it_gave_to_the_segment()
    {
        string name = NewName("own");
        using SharedSegment segment = CreateSegment(name, NewOptions());
        long baseline = segment.GetHeapStatistics().UsedBytes;
        ChildProcess child = HostOnBackend("hold", name);
        child.WaitForLine("ready");
        child.Send("alloc 300 5 segment");
        var kept = ShmHandle.FromValue(ulong.Parse(Field(child.WaitForLine("handle"), "handle"), CultureInfo.InvariantCulture));
        child.Send("alloc 300 6");
        var lost = ShmHandle.FromValue(ulong.Parse(Field(child.WaitForLine("handle"), "handle"), CultureInfo.InvariantCulture));
        child.Send("alloc 70000 7");
        var lostLarge = ShmHandle.FromValue(ulong.Parse(Field(child.WaitForLine("handle"), "handle"), CultureInfo.InvariantCulture));
        Assert.True(segment.GetSpan(lost).IndexOfAnyExcept((byte)6) < 0);

        child.Kill();
        Assert.Equal(1, segment.ReclaimDeadProcesses());
        Assert.True(segment.GetSpan(kept).IndexOfAnyExcept((byte)5) < 0);
        Assert.Throws<InvalidOperationException>(() => segment.GetSpan(lost));
        Assert.Throws<InvalidOperationException>(() => segment.GetSpan(lostLarge));
        segment.Free(kept);
        segment.ValidateHeap();
        Assert.Equal(baseline, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_block_written_in_one_process_is_read_in_another()
    {
        string name = NewName("xfer");
        using SharedSegment segment = CreateSegment(name, NewOptions());
        ShmHandle handle = segment.Allocate(5000, ShmOwnership.Segment);
        segment.GetSpan(handle).Fill(42);
        ChildProcess reader = HostOnBackend("read", name, "--handle", handle.Value.ToString(CultureInfo.InvariantCulture), "--byte", "42");
        string line = reader.WaitForLine("read");
        Assert.Equal("5000", Field(line, "length"));
        Assert.Equal("True", Field(line, "ok"));
        Assert.Equal(0, reader.WaitForExit());

        segment.Free(handle);
        ChildProcess late = HostOnBackend("read", name, "--handle", handle.Value.ToString(CultureInfo.InvariantCulture), "--byte", "42");
        Assert.StartsWith("error InvalidOperationException", late.WaitForLine("error"), StringComparison.Ordinal);
    }
}

/// <summary>The cross-process heap tests on POSIX segments.</summary>
public sealed class HeapCrossProcessTestsPosix : HeapCrossProcessTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.Posix;
}

/// <summary>The cross-process heap tests on System V segments.</summary>
public sealed class HeapCrossProcessTestsSystemV : HeapCrossProcessTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;
}
