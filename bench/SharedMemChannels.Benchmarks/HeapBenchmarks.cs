using System.Buffers;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace SharedMemChannels.Benchmarks;

/// <summary>
/// Allocate + free of one block: the shared heap's per-thread fast path (small sizes) and its locked
/// TLSF slow path (sizes above the cache classes), against <see cref="NativeMemory"/> and
/// <see cref="ArrayPool{T}.Shared"/> measured in the same run.
/// </summary>
[MemoryDiagnoser]
public class HeapBenchmarks
{
    private SharedSegment _segment = null!;

    /// <summary>Bytes per allocation: 64 takes the per-thread cache, 4096 and 65536 the locked TLSF heap.</summary>
    [Params(64, 4096, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string name = $"bench-heap-{Environment.ProcessId}";
        SharedSegment.Remove(name);
        _segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 64L << 20, RemoveOnLastDetach = true });
        // Warm the thread's cache and the heap.
        ShmHandle h = _segment.Allocate(Size);
        _segment.Free(h);
    }

    [GlobalCleanup]
    public void Cleanup() => _segment.Dispose();

    [Benchmark(Description = "SharedSegment Allocate+Free")]
    public void SharedHeap()
    {
        ShmHandle handle = _segment.Allocate(Size);
        _segment.Free(handle);
    }

    [Benchmark(Baseline = true, Description = "NativeMemory Alloc+Free")]
    public unsafe void Native()
    {
        void* block = NativeMemory.Alloc((nuint)Size);
        NativeMemory.Free(block);
    }

    [Benchmark(Description = "ArrayPool<byte>.Shared Rent+Return")]
    public void Pool()
    {
        byte[] array = ArrayPool<byte>.Shared.Rent(Size);
        ArrayPool<byte>.Shared.Return(array);
    }
}
