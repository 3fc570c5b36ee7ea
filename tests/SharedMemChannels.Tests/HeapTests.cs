using SharedMemChannels.Heap;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The shared heap within one process: sizes, bad handles, out of memory, caches, damage. Runs once per
/// backend (<see cref="HeapTestsPosix"/>, <see cref="HeapTestsSystemV"/>); what only one backend does
/// (growth, or its absence) is tested in that backend's class.
/// </summary>
public abstract class HeapTestsBase : SegmentTest
{
    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(100)]
    [InlineData(2000)]
    [InlineData(2017)]
    [InlineData(5000)]
    [InlineData(100_000)]
    public void GetSpan_is_exactly_the_allocated_size(int size)
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle handle = segment.Allocate(size);
        Span<byte> span = segment.GetSpan(handle);
        Assert.Equal(size, span.Length);
        span.Fill(0xAB);
        Assert.True(segment.GetSpan(handle).IndexOfAnyExcept((byte)0xAB) < 0);
        segment.Free(handle);
        segment.ValidateHeap();
    }

    [Fact]
    public void Blocks_do_not_overlap()
    {
        SharedSegment segment = NewSegment("heap");
        var random = new Random(7);
        var blocks = new List<(ShmHandle Handle, byte Fill)>();
        for (int i = 0; i < 2000; i++)
        {
            ShmHandle handle = segment.Allocate(random.Next(1, 3000));
            byte fill = (byte)i;
            segment.GetSpan(handle).Fill(fill);
            blocks.Add((handle, fill));
        }

        Assert.All(blocks, b => Assert.True(segment.GetSpan(b.Handle).IndexOfAnyExcept(b.Fill) < 0));
        Assert.Equal(blocks.Count, blocks.Select(b => b.Handle).Distinct().Count());
        foreach ((ShmHandle handle, _) in blocks)
        {
            segment.Free(handle);
        }

        segment.ValidateHeap();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(SharedSegment.MaxAllocationSize + 1)]
    public void Sizes_out_of_range_are_rejected(int size)
    {
        SharedSegment segment = NewSegment("heap");
        Assert.Throws<ArgumentOutOfRangeException>(() => segment.Allocate(size));
        Assert.Throws<ArgumentOutOfRangeException>(() => segment.TryAllocate(size, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => segment.Allocate(16, (ShmOwnership)9));
    }

    [Theory]
    [InlineData(64)]     // a per-thread cache class
    [InlineData(10_000)] // the locked heap
    public void Double_free_is_detected(int size)
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle handle = segment.Allocate(size);
        segment.Free(handle);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => segment.Free(handle));
        Assert.Contains("double free", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => segment.GetSpan(handle));
        segment.ValidateHeap();
    }

    [Fact]
    public void A_stale_handle_is_detected_after_its_block_is_reused()
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle first = segment.Allocate(64);
        segment.Free(first);
        ShmHandle second = segment.Allocate(64);
        Assert.Equal(first.Offset, second.Offset); // the cache hands the same block back...
        Assert.NotEqual(first, second);            // ...with a new generation
        Assert.Throws<InvalidOperationException>(() => segment.GetSpan(first));
        Assert.Throws<InvalidOperationException>(() => segment.Free(first));
        Assert.Equal(64, segment.GetSpan(second).Length);
    }

    [Fact]
    public void Null_and_foreign_handles_are_rejected()
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle block = segment.Allocate(1000);
        Assert.Throws<ArgumentException>(() => segment.Free(ShmHandle.Null));
        Assert.Throws<ArgumentException>(() => segment.GetSpan(default));

        // Inside a block's payload: not a block start.
        ShmHandle inside = ShmHandle.Create(block.Offset + 64, block.Generation);
        Assert.Throws<ArgumentException>(() => segment.GetSpan(inside));
        Assert.Throws<ArgumentException>(() => segment.Free(inside));

        // In the header page, beyond the segment, beyond the reservation.
        Assert.Throws<ArgumentException>(() => segment.GetSpan(ShmHandle.Create(4096, 1)));
        Assert.ThrowsAny<Exception>(() => segment.GetSpan(ShmHandle.Create(segment.Capacity + 4096, 1)));
        Assert.Throws<ArgumentException>(() => segment.GetSpan(ShmHandle.FromValue(ulong.MaxValue)));
        segment.ValidateHeap();
    }

    [Fact]
    public void A_handle_of_another_segment_is_rejected()
    {
        SharedSegment one = NewSegment("heap");
        SharedSegment two = NewSegment("heap");
        ShmHandle theirs = one.Allocate(500);
        two.Allocate(300);
        Exception e = Assert.ThrowsAny<Exception>(() => two.GetSpan(theirs));
        Assert.True(e is ArgumentException or InvalidOperationException, e.GetType().Name);
    }

    [Fact]
    public void Out_of_memory_is_false_or_an_exception_and_the_heap_stays_whole()
    {
        SharedSegment segment = NewSegment("heap", capacity: 64 * 1024, max: 64 * 1024);
        long baseline = segment.GetHeapStatistics().UsedBytes;
        Assert.False(segment.TryAllocate(1024 * 1024, out ShmHandle none));
        Assert.True(none.IsNull);
        OutOfSharedMemoryException e = Assert.Throws<OutOfSharedMemoryException>(() => segment.Allocate(1024 * 1024));
        Assert.Equal(1024 * 1024, e.RequestedBytes);
        Assert.True(e.FreeBytes > 0);
        Assert.Contains("1048576 bytes requested", e.Message, StringComparison.Ordinal);

        var held = new List<ShmHandle>();
        while (segment.TryAllocate(700, out ShmHandle handle))
        {
            held.Add(handle);
        }

        Assert.NotEmpty(held);
        segment.ValidateHeap();
        foreach (ShmHandle handle in held)
        {
            segment.Free(handle);
        }

        segment.ValidateHeap();
        Assert.Equal(baseline, segment.GetHeapStatistics().UsedBytes);
        Assert.True(segment.TryAllocate(20_000, out ShmHandle again)); // the space came back, coalesced
        segment.Free(again);
    }

    [Fact]
    public void Ownership_defaults_to_the_process_and_can_be_handed_to_the_segment()
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle mine = segment.Allocate(100);
        ShmHandle shared = segment.Allocate(100, ShmOwnership.Segment);
        ShmHandle small = segment.Allocate(10, ShmOwnership.Segment); // the cache path
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(mine));
        Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(shared));
        Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(small));
        segment.SetOwnership(mine, ShmOwnership.Segment);
        Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(mine));
        segment.SetOwnership(mine, ShmOwnership.Process);
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(mine));
        Assert.Throws<ArgumentOutOfRangeException>(() => segment.SetOwnership(mine, (ShmOwnership)5));
    }

    [Fact]
    public void Detaching_frees_the_blocks_the_attachment_owns_and_keeps_the_segments()
    {
        string name = NewName("heap");
        using SharedSegment keeper = CreateSegment(name, NewOptions());
        long baseline = keeper.GetHeapStatistics().UsedBytes;
        SharedSegment visitor = OpenSegment(name);
        ShmHandle owned = visitor.Allocate(5000);
        ShmHandle ownedSmall = visitor.Allocate(40);
        ShmHandle given = visitor.Allocate(5000, ShmOwnership.Segment);
        visitor.GetSpan(given).Fill(9);
        visitor.Dispose();

        Assert.Throws<InvalidOperationException>(() => keeper.GetSpan(owned));
        Assert.Throws<InvalidOperationException>(() => keeper.GetSpan(ownedSmall));
        Assert.True(keeper.GetSpan(given).IndexOfAnyExcept((byte)9) < 0);
        keeper.Free(given);
        keeper.ValidateHeap();
        Assert.Equal(baseline, keeper.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void Statistics_count_blocks_and_this_threads_cache()
    {
        SharedSegment segment = NewSegment("heap");
        HeapStatistics before = segment.GetHeapStatistics();
        ShmHandle a = segment.Allocate(64);
        ShmHandle b = segment.Allocate(5000);
        HeapStatistics during = segment.GetHeapStatistics();
        Assert.Equal(before.AllocatedBlocks + 2, during.AllocatedBlocks);
        Assert.True(during.UsedBytes >= before.UsedBytes + 64 + 5000);
        Assert.Contains(during.ThreadCaches, c => c.ProcessId == Environment.ProcessId && c.ThreadId == Environment.CurrentManagedThreadId);
        Assert.Equal(during.Capacity, during.UsedBytes + during.CachedBytes + during.FreeBytes + 32);
        segment.Free(a);
        segment.Free(b);
        Assert.Equal(before.UsedBytes, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_finished_threads_cache_goes_back_to_the_heap_without_a_collection()
    {
        SharedSegment segment = NewSegment("heap");
        int threadId = 0;
        object? cache = null;
        HeapStatistics? during = null;
        var worker = new Thread(() =>
        {
            threadId = Environment.CurrentManagedThreadId;
            var blocks = Enumerable.Range(0, 50).Select(i => segment.Allocate(32 + i)).ToList();
            blocks.ForEach(segment.Free);
            cache = segment.HeapInternal.CurrentThreadCacheForTest();
            during = segment.GetHeapStatistics();
        });
        worker.Start();
        Assert.True(worker.Join(ChildProcess.DefaultWait));
        Assert.NotNull(cache);
        Assert.Contains(during!.ThreadCaches, c => c.ThreadId == threadId && c.Blocks > 0);

        // The test holds the cache object, so no finalizer can return it: only the thread's end can.
        WaitUntil(() => !segment.GetHeapStatistics().ThreadCaches.Any(c => c.ThreadId == threadId), "the ended thread's cache is returned");
        GC.KeepAlive(cache);
        segment.ValidateHeap();
    }

    [Fact]
    public void ReleaseThreadCache_gives_this_threads_cache_back_is_idempotent_and_allocation_goes_on()
    {
        SharedSegment segment = NewSegment("heap");
        int me = Environment.CurrentManagedThreadId;
        bool Mine(ThreadCacheStatistics c) => c.ThreadId == me && c.ProcessId == Environment.ProcessId;
        HeapStatistics baseline = segment.GetHeapStatistics();
        var blocks = Enumerable.Range(0, 50).Select(i => segment.Allocate(32 + i)).ToList();
        blocks.ForEach(segment.Free);
        Assert.Contains(segment.GetHeapStatistics().ThreadCaches, c => Mine(c) && c.Blocks > 0);

        segment.ReleaseThreadCache();
        HeapStatistics released = segment.GetHeapStatistics();
        Assert.DoesNotContain(released.ThreadCaches, Mine);
        Assert.Equal(baseline.UsedBytes, released.UsedBytes);

        segment.ReleaseThreadCache(); // again: nothing left, nothing happens
        HeapStatistics again = segment.GetHeapStatistics();
        Assert.DoesNotContain(again.ThreadCaches, Mine);
        Assert.Equal(released.CachedBytes, again.CachedBytes);
        Assert.Equal(released.FreeBytes, again.FreeBytes);

        // The thread goes on: its next small allocation makes a new cache.
        ShmHandle handle = segment.Allocate(48);
        segment.GetSpan(handle).Fill(7);
        segment.Free(handle);
        Assert.Contains(segment.GetHeapStatistics().ThreadCaches, c => Mine(c) && c.Blocks > 0);
        segment.ReleaseThreadCache();
        Assert.DoesNotContain(segment.GetHeapStatistics().ThreadCaches, Mine);

        // A thread that never used the heap has nothing to give back.
        Exception? error = null;
        var idle = new Thread(() => error = Record.Exception(segment.ReleaseThreadCache));
        idle.Start();
        Assert.True(idle.Join(ChildProcess.DefaultWait));
        Assert.Null(error);
        segment.ValidateHeap();

        segment.Dispose();
        Assert.Throws<ObjectDisposedException>(segment.ReleaseThreadCache);
    }

    [Fact]
    public void Disposing_returns_this_processes_caches()
    {
        string name = NewName("heap");
        using SharedSegment keeper = CreateSegment(name, NewOptions());
        SharedSegment user = OpenSegment(name);
        int slot = user.Owner.Slot;
        var blocks = Enumerable.Range(0, 40).Select(i => user.Allocate(16 + (i * 8))).ToList();
        blocks.ForEach(user.Free);
        Assert.Contains(keeper.GetHeapStatistics().ThreadCaches, c => c.ProcessSlot == slot);
        user.Dispose();
        Assert.DoesNotContain(keeper.GetHeapStatistics().ThreadCaches, c => c.ProcessSlot == slot);
        keeper.ValidateHeap();
    }

    [Fact]
    public void Many_threads_allocating_and_freeing_keep_the_heap_consistent()
    {
        SharedSegment segment = NewSegment("heap", capacity: 256 * 1024, max: 256L * 1024 * 1024);
        long baseline = segment.GetHeapStatistics().UsedBytes;
        int errors = 0;
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var random = new Random(t);
            var held = new List<(ShmHandle, byte)>();
            for (int i = 0; i < 20_000; i++)
            {
                if (held.Count < 50 && (held.Count == 0 || random.Next(2) == 0))
                {
                    ShmHandle h = segment.Allocate(random.Next(8) == 0 ? random.Next(1, 20_000) : random.Next(1, 500));
                    byte fill = (byte)(t * 50 + i);
                    segment.GetSpan(h).Fill(fill);
                    held.Add((h, fill));
                }
                else
                {
                    int k = random.Next(held.Count);
                    (ShmHandle h, byte fill) = held[k];
                    if (segment.GetSpan(h).IndexOfAnyExcept(fill) >= 0)
                    {
                        Interlocked.Increment(ref errors);
                    }

                    segment.Free(h);
                    held.RemoveAt(k);
                }
            }

            held.ForEach(x => segment.Free(x.Item1));
        });
        Assert.Equal(0, errors);
        segment.ValidateHeap();
        Assert.Equal(baseline, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_damaged_block_header_is_an_exception_not_a_crash()
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle victim = segment.Allocate(4000);
        ShmHandle neighbour = segment.Allocate(4000);
        // A buggy peer writes over the block headers.
        segment.Memory.Span(victim.Offset, 32).Fill(0xEE);
        Assert.Throws<ArgumentException>(() => segment.GetSpan(victim));
        Assert.Throws<ArgumentException>(() => segment.Free(victim));
        Assert.Throws<InvalidSegmentException>(() => segment.ValidateHeap());
        ref BlockHeader header = ref segment.Memory.Ref<BlockHeader>(neighbour.Offset);
        header.SizeUnits = uint.MaxValue; // claims to run past the segment
        Assert.Throws<InvalidSegmentException>(() => segment.GetSpan(neighbour));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_damage_to_the_heap_is_only_ever_a_documented_exception(int seed)
    {
        // In a child: were a damaged offset ever followed outside the mapping, that process would crash,
        // not this one, and the test would see it.
        ChildProcess fuzz = HostOnBackend("corrupt-fuzz", NewName("fuzz"), "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--rounds", "40");
        string line = fuzz.WaitForLine("fuzz ok");
        Assert.Equal(0, fuzz.WaitForExit());
        Assert.True(int.Parse(Field(line, "exceptions"), System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public void Handles_round_trip_through_their_value()
    {
        SharedSegment segment = NewSegment("heap");
        ShmHandle handle = segment.Allocate(10);
        Assert.Equal(handle, ShmHandle.FromValue(handle.Value));
        Assert.False(handle.IsNull);
        Assert.True(ShmHandle.Null.IsNull);
        Assert.Equal(0UL, ShmHandle.Null.Value);
        Assert.Contains("offset", handle.ToString(), StringComparison.Ordinal);
    }
}

/// <summary>The heap tests on POSIX segments, and growth, which only they have.</summary>
public sealed class HeapTestsPosix : HeapTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.Posix;

    [Fact]
    public void The_heap_grows_the_segment_up_to_its_maximum()
    {
        SharedSegment segment = NewSegment("heap", capacity: 64 * 1024, max: 8 * 1024 * 1024);
        nint baseAddress = segment.BaseAddress;
        var held = new List<ShmHandle>();
        for (int i = 0; i < 100; i++)
        {
            held.Add(segment.Allocate(50_000));
        }

        Assert.True(segment.Capacity >= 5_000_000);
        Assert.Equal(baseAddress, segment.BaseAddress);
        Assert.True(segment.GetHeapStatistics().Capacity > 5_000_000);
        segment.ValidateHeap();
        Assert.False(segment.TryAllocate(8 * 1024 * 1024, out _)); // beyond the maximum
        foreach (ShmHandle handle in held)
        {
            segment.Free(handle);
        }

        segment.ValidateHeap();
        Assert.Equal(1, segment.GetHeapStatistics().FreeBlocks); // all one block again
    }
}

/// <summary>The heap tests on System V segments, and their fixed size.</summary>
public sealed class HeapTestsSystemV : HeapTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;

    [Fact]
    public void A_System_V_heap_does_not_grow()
    {
        SharedSegment segment = NewSegment("heap", capacity: 128 * 1024, max: 128 * 1024);
        Assert.False(segment.TryAllocate(200 * 1024, out _));
        Assert.Equal(128 * 1024, segment.Capacity);
        ShmHandle fits = segment.Allocate(50 * 1024);
        segment.Free(fits);
        segment.ValidateHeap();
    }
}
