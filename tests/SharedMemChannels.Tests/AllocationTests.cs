using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>"Hot path allocates nothing" as a tested property, on each backend.</summary>
public abstract class AllocationTestsBase : SegmentTest
{
    [Theory]
    [InlineData(64)]   // the per-thread cache
    [InlineData(4096)] // the locked heap
    public void Allocate_GetSpan_Free_allocate_no_managed_memory_in_steady_state(int size)
    {
        using SharedSegment segment = CreateSegment(NewName("alloc"), NewOptions(capacity: 4 << 20));
        for (int i = 0; i < 1000; i++)
        {
            Churn(segment, size); // warm up: caches, JIT tiers, the thread-local lookups
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            Churn(segment, size);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Reading_a_named_object_and_its_containers_allocates_nothing()
    {
        using SharedSegment segment = CreateSegment(NewName("alloc"), NewOptions(capacity: 4 << 20));
        ShmPtr<Config> config = segment.Construct<Config>("c");
        config.Value.Title.Assign(segment, "title");
        config.Value.Gains.AddRange(segment, [1.0, 2.0, 3.0]);
        double sum = 0;
        for (int i = 0; i < 100; i++)
        {
            sum += Read(segment, config);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            sum += Read(segment, config);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sum > 0);
    }

    private static double Read(SharedSegment segment, ShmPtr<Config> config)
    {
        ref Config c = ref config.Value;
        double sum = c.Title.AsSpan(segment).Length;
        foreach (double gain in c.Gains.AsSpan(segment))
        {
            sum += gain;
        }

        return sum;
    }

    private static void Churn(SharedSegment segment, int size)
    {
        ShmHandle handle = segment.Allocate(size);
        segment.GetSpan(handle)[0] = 1;
        segment.Free(handle);
    }
}

/// <summary>The allocation tests on POSIX segments.</summary>
public sealed class AllocationTestsPosix : AllocationTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.Posix;
}

/// <summary>The allocation tests on System V segments.</summary>
public sealed class AllocationTestsSystemV : AllocationTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;
}
