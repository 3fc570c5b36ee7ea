using System.Runtime.CompilerServices;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Heap;

/// <summary>
/// Per-thread caches: made on a thread's first small allocation or free, given back to the heap when
/// the thread ends (the kernel tells, see <see cref="IThreadExits"/>), when the thread asks
/// (<see cref="ReleaseCurrentThreadCache"/>, RaftLib's <c>close_tls_structure</c>), and on detach.
/// </summary>
internal sealed partial class SharedHeap
{
    private readonly Lock _cachesLock = new();
    private readonly List<WeakReference<ThreadCache>> _caches = [];
    private bool _detached;

    [ThreadStatic]
    private static ThreadCache? t_lastCache;

    [ThreadStatic]
    private static ThreadCacheSet? t_caches;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadCache GetCache()
    {
        ThreadCache? cache = t_lastCache;
        if (cache is not null && cache.HeapId == Id && !cache.Returned)
        {
            return cache;
        }

        return GetCacheSlow();
    }

    private ThreadCache GetCacheSlow()
    {
        ThreadCacheSet set = t_caches ??= ThreadCacheSet.ForCurrentThread();
        set.Caches.RemoveAll(static c => c.Returned);
        foreach (ThreadCache existing in set.Caches)
        {
            if (existing.HeapId == Id)
            {
                t_lastCache = existing;
                return existing;
            }
        }

        var cache = new ThreadCache(this, (uint)Environment.CurrentManagedThreadId, set.Watched ? null : Thread.CurrentThread);
        lock (_cachesLock)
        {
            ObjectDisposedException.ThrowIf(_detached, typeof(SharedSegment));
            ReturnCachesOfEndedThreadsLocked();
            _caches.Add(new WeakReference<ThreadCache>(cache));
        }

        set.Caches.Add(cache);
        t_lastCache = cache;
        return cache;
    }

    /// <summary>
    /// Forgets caches already returned and, where the kernel cannot watch threads (Linux before 6.9),
    /// returns the caches of threads that have ended: each new thread that uses the heap sweeps for the
    /// ones that went before it (their finalizers would do it only after a collection).
    /// </summary>
    private void ReturnCachesOfEndedThreadsLocked()
    {
        for (int i = _caches.Count - 1; i >= 0; i--)
        {
            if (!_caches[i].TryGetTarget(out ThreadCache? cache) || cache.Returned)
            {
                _caches.RemoveAt(i);
            }
            else if (cache.UnwatchedThread is { IsAlive: false })
            {
                ReturnOfEndedThreadLocked(cache);
                _caches.RemoveAt(i);
            }
        }
    }

    /// <summary>
    /// Gives the calling thread's cache of this heap back (RaftLib's <c>close_tls_structure</c>). Does
    /// nothing if the thread has none; its next small allocation or free makes a new one.
    /// </summary>
    public void ReleaseCurrentThreadCache()
    {
        ThreadCacheSet? set = t_caches;
        if (set is null)
        {
            return;
        }

        foreach (ThreadCache cache in set.Caches)
        {
            if (cache.HeapId != Id)
            {
                continue;
            }

            if (ReferenceEquals(t_lastCache, cache))
            {
                t_lastCache = null;
            }

            lock (_cachesLock)
            {
                if (!_detached && !cache.Returned)
                {
                    // Marked first: should the heap turn out damaged half-way, what is left stays this
                    // process's blocks and goes back when it detaches (or is reclaimed if it dies).
                    cache.Returned = true;
                    FlushCache(cache);
                }
            }
        }

        set.Caches.RemoveAll(static c => c.Returned);
    }

    /// <summary>Returns half of a full class to the heap.</summary>
    private void FlushHalf(ThreadCache cache, int sizeClass)
    {
        int keep = SizeClasses.Capacity(sizeClass) / 2;
        using (HoldLock())
        {
            while (cache.Counts[sizeClass] > keep)
            {
                ReleaseCachedLocked(cache.Pop(sizeClass));
            }
        }
    }

    /// <summary>Returns every block of a cache to the heap.</summary>
    private void FlushCache(ThreadCache cache)
    {
        using (HoldLock())
        {
            for (int c = 0; c < SizeClasses.Count; c++)
            {
                while (cache.Counts[c] > 0)
                {
                    ReleaseCachedLocked(cache.Pop(c));
                }
            }
        }
    }

    private void ReleaseCachedLocked(long offset)
    {
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        ulong stateGen = Volatile.Read(ref block.StateGen);
        if (BlockHeader.StateOf(stateGen) != BlockHeader.StateCached || block.Owner != _owner.Value)
        {
            return; // not ours any more (reclaimed or overwritten): nothing to return
        }

        Volatile.Write(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, BlockHeader.GenerationOf(stateGen)));
        ReleaseLocked(offset);
    }

    /// <summary>Called when a cache's thread has ended: by the thread-exit watcher, a sweep, or the cache's finalizer.</summary>
    internal void ReturnCacheOfEndedThread(ThreadCache cache)
    {
        lock (_cachesLock)
        {
            ReturnOfEndedThreadLocked(cache);
        }
    }

    private void ReturnOfEndedThreadLocked(ThreadCache cache)
    {
        if (_detached || cache.Returned)
        {
            return; // detaching returned it (and the mapping may be gone), or it went back already
        }

        cache.Returned = true;
        try
        {
            FlushCache(cache);
        }
        catch (InvalidSegmentException)
        {
            // A damaged heap cannot take the blocks back, and neither a finalizer nor the watcher thread may
            // throw: they stay marked as this process's and go back when it detaches or dies.
        }
    }

    /// <summary>Returns every cache of this process to the heap; the segment is being disposed.</summary>
    public void Detach()
    {
        lock (_cachesLock)
        {
            if (_detached)
            {
                return;
            }

            _detached = true;
            InvalidSegmentException? damage = null;
            foreach (WeakReference<ThreadCache> weak in _caches)
            {
                if (weak.TryGetTarget(out ThreadCache? cache) && !cache.Returned)
                {
                    cache.Returned = true;
                    try
                    {
                        FlushCache(cache);
                    }
                    catch (InvalidSegmentException e)
                    {
                        damage ??= e; // keep detaching: the other caches, the slot, the mapping
                    }
                }
            }

            _caches.Clear();
            if (damage is not null)
            {
                throw damage;
            }
        }
    }

    /// <summary>The calling thread's cache of this heap, if it has one (tests keep it reachable to show that no finalizer returned it).</summary>
    internal object? CurrentThreadCacheForTest() => t_caches?.Caches.Find(c => c.HeapId == Id && !c.Returned);

    /// <summary>
    /// One thread's caches, of every heap it used. The thread-exit watcher holds it while the thread runs
    /// and is told when the thread has ended; it then gives each cache back to its heap.
    /// </summary>
    private sealed class ThreadCacheSet : IThreadExitListener
    {
        public List<ThreadCache> Caches { get; } = [];

        /// <summary>Whether the kernel tells us when this thread ends (otherwise the sweep and the finalizers do).</summary>
        public bool Watched { get; private set; }

        public static ThreadCacheSet ForCurrentThread()
        {
            var set = new ThreadCacheSet();
            set.Watched = PlatformServices.ThreadExits.TryWatchCurrentThread(set);
            return set;
        }

        public void OnThreadExited()
        {
            // The thread has ended: nothing touches these lists any more but this call.
            foreach (ThreadCache cache in Caches)
            {
                cache.Heap.ReturnCacheOfEndedThread(cache);
            }

            Caches.Clear();
        }
    }
}
