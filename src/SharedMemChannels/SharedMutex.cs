using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// A named mutual-exclusion lock in a segment, shared by processes, that survives its holder being
/// killed: the next process to take it after a holder died (or detached without releasing it) gets an
/// <see cref="AbandonedMutexException"/>, as with <see cref="Mutex"/>, and then holds it. eCAL's robust
/// named mutex, RaftLib's named synchronization segment.
/// </summary>
/// <remarks>
/// <para>
/// Ownership belongs to the process, not to a thread (so that <see cref="SharedSyncObject.WaitAsync(CancellationToken)"/>
/// can resume on any thread): any thread of the holding process may <see cref="Release"/> it. It is not
/// recursive: a second wait in the holding process waits for a release, like
/// <c>SemaphoreSlim(1, 1)</c>; a thread that waits again before releasing waits for ever.
/// </para>
/// <para>
/// Waiting spins a little, then sleeps in the kernel (a futex on the object's event count); an
/// asynchronous wait is served by the process's waiter thread, so no thread blocks per pending wait.
/// Disposing does not release the mutex: a process that ends (or detaches) holding it abandons it.
/// </para>
/// </remarks>
public sealed class SharedMutex : SharedSyncObject
{
    private static readonly Func<SyncCore, bool, TakeResult> s_take = Take;

    private SharedMutex(SyncCore core)
        : base(core)
    {
    }

    private protected override Func<SyncCore, bool, TakeResult> TakeStep => s_take;

    /// <summary>Whether a thread of this process holds the mutex now.</summary>
    public bool IsHeldByThisProcess
    {
        get
        {
            using SegmentAttachment.Use use = Core.EnterUse();
            return Volatile.Read(ref Core.State) == (int)Core.Owner.Value;
        }
    }

    /// <summary>Creates the mutex <paramref name="name"/> in <paramref name="segment"/>, free.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-'.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    public static SharedMutex Create(SharedSegment segment, string name) => new(SyncCore.Open(segment, name, SyncControl.KindMutex, Initial(), SyncCore.OpenMode.Create));

    /// <summary>Opens the existing mutex <paramref name="name"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="KeyNotFoundException">There is no such object.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedMutex Open(SharedSegment segment, string name) => new(SyncCore.Open(segment, name, SyncControl.KindMutex, Initial(), SyncCore.OpenMode.Open));

    /// <summary>Opens the mutex <paramref name="name"/>, or creates it (free): exactly one process creates.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedMutex OpenOrCreate(SharedSegment segment, string name) => new(SyncCore.Open(segment, name, SyncControl.KindMutex, Initial(), SyncCore.OpenMode.OpenOrCreate));

    /// <summary>Releases the mutex (any thread of the holding process may).</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the mutex.</exception>
    public void Release()
    {
        using SegmentAttachment.Use use = Core.EnterUse();
        Core.CheckIdentity();
        int me = (int)Core.Owner.Value;
        if (Interlocked.CompareExchange(ref Core.State, 0, me) != me)
        {
            throw new SynchronizationLockException($"Mutex '{Name}' is not held by this process.");
        }

        Core.Signal();
    }

    /// <summary>Removes the mutex <paramref name="name"/> from <paramref name="segment"/>: its waiters fail. False when there is none.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    public static bool Remove(SharedSegment segment, string name) => SyncCore.Remove(segment, name);

    private static SyncControl Initial() => new()
    {
        Magic = SyncControl.MagicValue,
        Version = SyncControl.CurrentVersion,
        Kind = SyncControl.KindMutex,
        Maximum = 1,
        CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    };

    private protected override bool Finish(TakeResult result)
    {
        if (result == TakeResult.Abandoned)
        {
            throw new AbandonedMutexException($"Mutex '{Name}' was abandoned: its holder died (or detached) holding it. This process holds it now; the data it guards may be inconsistent.");
        }

        return result == TakeResult.Taken;
    }

    private static TakeResult Take(SyncCore core, bool afterSlice)
    {
        int me = (int)core.Owner.Value;
        ref int state = ref core.State;
        int holder = Volatile.Read(ref state);
        if (holder == 0)
        {
            if (Interlocked.CompareExchange(ref state, me, 0) == 0)
            {
                Interlocked.Increment(ref core.Control.Acquisitions);
                return TakeResult.Taken;
            }

            return TakeResult.NotYet;
        }

        // After a slice with no change: a holder whose process is gone (or a garbage holder word) is taken over.
        if (afterSlice && holder != me && !core.Processes.IsAlive(new OwnerId((uint)holder)) &&
            Interlocked.CompareExchange(ref state, me, holder) == holder)
        {
            Interlocked.Increment(ref core.Control.Acquisitions);
            return TakeResult.Abandoned;
        }

        return TakeResult.NotYet;
    }
}
