using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// A mutual-exclusion lock on a 32-bit word in shared memory that survives its holder being killed.
/// The word holds the holder's <see cref="OwnerId"/> (0 when free) and a waiters bit. Waiters sleep on
/// the word with a futex; every few milliseconds a sleeper checks whether the holder's process still
/// lives, and takes over the lock of a dead one. The caller then learns that the protected data may be
/// half updated (<see cref="LockResult.OwnerDied"/>, the shared-memory form of
/// <see cref="AbandonedMutexException"/>) and repairs it before going on.
/// </summary>
/// <remarks>
/// <see cref="Enter{TRecovery}"/> is the one way the library's structures take such a lock: it runs the
/// structure's repair (<see cref="ILockRecovery"/>) when the previous holder died, and returns a scope
/// whose disposal releases the lock.
/// The lock is per process: threads of one process share an owner id, so it is not reentrant and a
/// thread must not take it twice. Liveness is pid plus start time, never a lease: a stopped holder is
/// waited for, not robbed.
/// </remarks>
internal static class RobustLock
{
    private const int WaitersBit = unchecked((int)0x8000_0000);

    /// <summary>
    /// Takes the lock for <paramref name="me"/>; if its holder died, lets <paramref name="recovery"/>
    /// repair the data it guards before returning (and releases the lock if the repair throws).
    /// </summary>
    public static Scope Enter<TRecovery>(ref int word, OwnerId me, ProcessTable processes, TRecovery recovery)
        where TRecovery : class, ILockRecovery
    {
        if (Acquire(ref word, me, processes) == LockResult.OwnerDied)
        {
            try
            {
                recovery.RecoverLocked();
            }
            catch
            {
                Release(ref word);
                throw;
            }
        }

        return new Scope(ref word);
    }

    /// <summary>Takes the lock for <paramref name="me"/>.</summary>
    public static LockResult Acquire(ref int word, OwnerId me, ProcessTable processes)
    {
        int mine = (int)me.Value;
        if (Interlocked.CompareExchange(ref word, mine, 0) == 0)
        {
            return LockResult.Acquired;
        }

        return AcquireContended(ref word, mine, processes);
    }

    /// <summary>Lets go of the lock and wakes a waiter if there is one.</summary>
    public static void Release(ref int word)
    {
        if ((Interlocked.Exchange(ref word, 0) & WaitersBit) != 0)
        {
            PlatformServices.Futex.Wake(ref word, 1);
        }
    }

    /// <summary>The owner id recorded in the lock word, or none.</summary>
    public static OwnerId HolderOf(int value) => new((uint)(value & ~WaitersBit));

    private static LockResult AcquireContended(ref int word, int mine, ProcessTable processes)
    {
        var spinner = default(SpinWait);
        for (int i = 0; i < 20; i++)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (Volatile.Read(ref word) == 0 && Interlocked.CompareExchange(ref word, mine, 0) == 0)
            {
                return LockResult.Acquired;
            }
        }

        // From here on we may have slept, so we always take the lock with the waiters bit set: another
        // sleeper may be behind us (the classic three-state futex mutex).
        int sliceMs = 1;
        while (true)
        {
            int seen = Volatile.Read(ref word);
            if (seen == 0)
            {
                if (Interlocked.CompareExchange(ref word, mine | WaitersBit, 0) == 0)
                {
                    return LockResult.Acquired;
                }

                continue;
            }

            if ((seen & WaitersBit) == 0 && Interlocked.CompareExchange(ref word, seen | WaitersBit, seen) != seen)
            {
                continue;
            }

            bool woken = PlatformServices.Futex.Wait(ref word, seen | WaitersBit, TimeSpan.FromMilliseconds(sliceMs));
            if (woken)
            {
                continue;
            }

            // Slept a whole slice with the same holder: is it still alive?
            sliceMs = Math.Min(sliceMs * 2, 50);
            int now = Volatile.Read(ref word);
            if (now != (seen | WaitersBit))
            {
                continue;
            }

            OwnerId holder = HolderOf(now);
            if (!processes.IsAlive(holder) && Interlocked.CompareExchange(ref word, mine | WaitersBit, now) == now)
            {
                return LockResult.OwnerDied;
            }
        }
    }
}

/// <summary>Releases a <see cref="RobustLock"/> when disposed (<c>using (RobustLock.Enter(...))</c>).</summary>
internal readonly ref struct Scope
{
    private readonly ref int _word;

    public Scope(ref int word) => _word = ref word;

    public void Dispose() => RobustLock.Release(ref _word);
}

/// <summary>A structure guarded by a <see cref="RobustLock"/> that can repair itself after a holder died.</summary>
internal interface ILockRecovery
{
    /// <summary>
    /// Called holding the lock just taken over from a dead holder: finish or undo what it was doing
    /// (its intent record), so that the structure is consistent again.
    /// </summary>
    void RecoverLocked();
}

/// <summary>How a <see cref="RobustLock"/> was taken.</summary>
internal enum LockResult
{
    /// <summary>Taken from a holder that released it normally.</summary>
    Acquired,

    /// <summary>Taken over from a holder that died holding it: the protected data must be repaired.</summary>
    OwnerDied,
}
