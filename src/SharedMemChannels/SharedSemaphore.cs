using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// A named counting semaphore in a segment, shared by processes, with the surface of
/// <see cref="SemaphoreSlim"/>: <see cref="SharedSyncObject.Wait()"/> takes one unit (waiting while there is none),
/// <see cref="Release(int)"/> returns units, up to the maximum it was made with.
/// </summary>
/// <remarks>
/// Waiting spins a little, then sleeps in the kernel; an asynchronous wait is served by the process's
/// waiter thread, so no thread blocks per pending wait. As with any counting semaphore, units taken by
/// a process that dies are not given back for it: the count is not an ownership record.
/// </remarks>
public sealed class SharedSemaphore : SharedSyncObject
{
    private static readonly Func<SyncCore, bool, TakeResult> s_take = Take;

    private SharedSemaphore(SyncCore core)
        : base(core)
    {
    }

    private protected override Func<SyncCore, bool, TakeResult> TakeStep => s_take;

    /// <summary>The most units the semaphore holds (as stored with it).</summary>
    public int MaximumCount
    {
        get
        {
            using SegmentAttachment.Use use = Core.EnterUse();
            return Core.Control.Maximum;
        }
    }

    /// <summary>The units available now.</summary>
    public int CurrentCount
    {
        get
        {
            using SegmentAttachment.Use use = Core.EnterUse();
            Core.CheckIdentity();
            return Volatile.Read(ref Core.State);
        }
    }

    /// <summary>Creates the semaphore <paramref name="name"/> in <paramref name="segment"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-'.</param>
    /// <param name="initialCount">The units available at first, from 0 to <paramref name="maximumCount"/>.</param>
    /// <param name="maximumCount">The most units it holds, at least 1.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    public static SharedSemaphore Create(SharedSegment segment, string name, int initialCount, int maximumCount = int.MaxValue) =>
        new(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(initialCount, maximumCount), SyncCore.OpenMode.Create));

    /// <summary>Opens the existing semaphore <paramref name="name"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="KeyNotFoundException">There is no such object.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedSemaphore Open(SharedSegment segment, string name) =>
        new(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(0, 1), SyncCore.OpenMode.Open));

    /// <summary>Opens the semaphore <paramref name="name"/>, or creates it: exactly one process creates.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <param name="initialCount">The units available at first, when created here.</param>
    /// <param name="maximumCount">The most units it holds; checked against an existing semaphore.</param>
    /// <exception cref="ArgumentException">The existing semaphore has another maximum.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedSemaphore OpenOrCreate(SharedSegment segment, string name, int initialCount, int maximumCount = int.MaxValue)
    {
        var made = new SharedSemaphore(SyncCore.Open(segment, name, SyncControl.KindSemaphore, Initial(initialCount, maximumCount), SyncCore.OpenMode.OpenOrCreate));
        if (made.MaximumCount != maximumCount)
        {
            int existing = made.MaximumCount;
            made.Dispose();
            throw new ArgumentException($"Semaphore '{name}' exists with maximum count {existing}.", nameof(maximumCount));
        }

        return made;
    }

    /// <summary>Returns one unit; returns the count before.</summary>
    /// <exception cref="SemaphoreFullException">The semaphore holds its maximum already.</exception>
    public int Release() => Release(1);

    /// <summary>Returns <paramref name="releaseCount"/> units; returns the count before.</summary>
    /// <param name="releaseCount">At least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="releaseCount"/> is less than 1.</exception>
    /// <exception cref="SemaphoreFullException">The count would exceed the maximum (nothing is released).</exception>
    public int Release(int releaseCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(releaseCount, 1);
        using SegmentAttachment.Use use = Core.EnterUse();
        Core.CheckIdentity();
        int maximum = Core.Control.Maximum;
        ref int state = ref Core.State;
        while (true)
        {
            int count = Volatile.Read(ref state);
            if (count < 0 || count > maximum)
            {
                Common.ThrowHelper.ThrowDamaged(Core.Segment.Name, $"semaphore '{Name}' has a count {count} outside 0..{maximum}.");
            }

            if (releaseCount > maximum - count)
            {
                throw new SemaphoreFullException($"Semaphore '{Name}' holds {count} of at most {maximum} units; {releaseCount} more do not fit.");
            }

            if (Interlocked.CompareExchange(ref state, count + releaseCount, count) == count)
            {
                Core.Signal();
                return count;
            }
        }
    }

    /// <summary>Removes the semaphore <paramref name="name"/> from <paramref name="segment"/>: its waiters fail. False when there is none.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    public static bool Remove(SharedSegment segment, string name) => SyncCore.Remove(segment, name);

    private static SyncControl Initial(int initialCount, int maximumCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maximumCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(initialCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(initialCount, maximumCount);
        return new SyncControl
        {
            Magic = SyncControl.MagicValue,
            Version = SyncControl.CurrentVersion,
            Kind = SyncControl.KindSemaphore,
            Maximum = maximumCount,
            CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            State = initialCount,
        };
    }

    private static TakeResult Take(SyncCore core, bool afterSlice)
    {
        ref int state = ref core.State;
        int maximum = core.Control.Maximum;
        for (int attempt = 0; attempt < 64; attempt++)
        {
            int count = Volatile.Read(ref state);
            if (count <= 0 || count > maximum)
            {
                if (count < 0 || count > maximum)
                {
                    Common.ThrowHelper.ThrowDamaged(core.Segment.Name, $"semaphore '{core.Name}' has a count {count} outside 0..{maximum}.");
                }

                return TakeResult.NotYet;
            }

            if (Interlocked.CompareExchange(ref state, count - 1, count) == count)
            {
                return TakeResult.Taken;
            }
        }

        return TakeResult.NotYet;
    }
}
