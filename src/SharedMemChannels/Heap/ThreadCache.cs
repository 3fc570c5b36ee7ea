namespace SharedMemChannels.Heap;

/// <summary>
/// One thread's stock of free blocks of one heap, by size class. Only its thread pushes and pops, so
/// neither takes a lock. The blocks themselves are marked "cached" and owned by this process in shared
/// memory, so if the process dies they are reclaimed with its other blocks; the offsets are kept here,
/// in process memory. When the thread ends, the heap's thread-exit watcher gives the blocks back (or, where
/// the kernel cannot watch threads, the next new thread's sweep or this finalizer, whichever comes first).
/// </summary>
internal sealed class ThreadCache
{
    private readonly long[] _blocks;
    private readonly int[] _start;

    public ThreadCache(SharedHeap heap, uint threadTag, Thread? unwatchedThread)
    {
        Heap = heap;
        UnwatchedThread = unwatchedThread;
        HeapId = heap.Id;
        ThreadTag = threadTag;
        Counts = new int[SizeClasses.Count];
        _start = new int[SizeClasses.Count];
        int total = 0;
        for (int c = 0; c < SizeClasses.Count; c++)
        {
            _start[c] = total;
            total += SizeClasses.Capacity(c);
        }

        _blocks = new long[total];
    }

    ~ThreadCache()
    {
        // The thread that owned this cache has ended (nothing else refers to it strongly).
        Heap.ReturnCacheOfEndedThread(this);
    }

    public SharedHeap Heap { get; }

    /// <summary>The owning thread when the kernel does not tell us of its end (null when it does): swept by <see cref="Thread.IsAlive"/>.</summary>
    public Thread? UnwatchedThread { get; }

    public int HeapId { get; }

    public uint ThreadTag { get; }

    public int[] Counts { get; }

    /// <summary>Set once the blocks went back to the heap; the cache is then never used again.</summary>
    public bool Returned { get; set; }

    public void Push(int sizeClass, long offset) => _blocks[_start[sizeClass] + Counts[sizeClass]++] = offset;

    public long Pop(int sizeClass) => _blocks[_start[sizeClass] + --Counts[sizeClass]];
}
