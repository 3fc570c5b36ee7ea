using System.Runtime.CompilerServices;

namespace SharedMemChannels.Segments;

/// <summary>
/// Which segment each thread is using at this moment: the record that lets
/// <see cref="SegmentAttachment.Detach"/> unmap only once no other thread is inside an operation on the
/// mapping, at the cost of two plain stores and one load per operation (no interlocked instruction, no
/// shared cache line written).
/// </summary>
/// <remarks>
/// The protocol is an asymmetric Dekker. An operation stores its attachment's id into its thread's slot,
/// then reads the attachment's detached flag; the detacher sets the flag, runs a process-wide memory
/// barrier (<see cref="Interlocked.MemoryBarrierProcessWide"/>: every thread of the process passes a full
/// fence), then reads every slot. Either the detacher sees the slot naming its attachment (and waits for it
/// to change), or the operation's read comes after the barrier and sees the flag (and throws
/// <see cref="ObjectDisposedException"/> without touching the mapping). The fast side needs only program
/// order between its store and its load, which the volatile accesses give (on arm64 a release store and
/// an acquire load are ordered by themselves). Operations nest only within one segment; user code that runs
/// inside an operation (an item-dropped callback) leaves it first (<see cref="SegmentAttachment.SuspendUse"/>).
/// </remarks>
internal static class SegmentUse
{
    [ThreadStatic]
    private static Slot? t_slot;

    private static readonly Lock s_lock = new();
    private static readonly List<WeakReference<Slot>> s_slots = [];
    private static int s_sweepAt = 64;

    /// <summary>This thread's slot (made and registered on the thread's first operation).</summary>
    public static Slot Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_slot ?? Register();
    }

    /// <summary>Whether this thread is inside an operation on the attachment <paramref name="id"/>.</summary>
    public static bool IsUsedHere(int id) => t_slot is { } slot && Volatile.Read(ref slot.Attachment) == id;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Slot Register()
    {
        var slot = new Slot();
        lock (s_lock)
        {
            // Slots of ended threads are unreachable but for these weak references: drop them now and then.
            if (s_slots.Count >= s_sweepAt)
            {
                s_slots.RemoveAll(static w => !w.TryGetTarget(out _));
                s_sweepAt = Math.Max(64, s_slots.Count * 2);
            }

            s_slots.Add(new WeakReference<Slot>(slot));
        }

        t_slot = slot;
        return slot;
    }

    /// <summary>
    /// Waits until no thread but this one is inside an operation on the attachment <paramref name="id"/>,
    /// at most <paramref name="limit"/>; false when some still were. The caller has set the attachment's
    /// detached flag and run the process-wide barrier, so a thread seen outside never comes back in.
    /// </summary>
    public static bool WaitUntilUnused(int id, TimeSpan limit)
    {
        Slot? mine = t_slot;
        List<Slot>? busy = null;
        lock (s_lock)
        {
            foreach (WeakReference<Slot> weak in s_slots)
            {
                if (weak.TryGetTarget(out Slot? slot) && !ReferenceEquals(slot, mine) && Volatile.Read(ref slot.Attachment) == id)
                {
                    (busy ??= []).Add(slot);
                }
            }
        }

        if (busy is null)
        {
            return true;
        }

        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        var spinner = default(SpinWait);
        foreach (Slot slot in busy)
        {
            while (Volatile.Read(ref slot.Attachment) == id)
            {
                if (Environment.TickCount64 > deadline)
                {
                    return false;
                }

                spinner.SpinOnce(sleep1Threshold: 20);
            }
        }

        return true;
    }

    /// <summary>One thread's record: the id of the attachment it is using, 0 when none.</summary>
    internal sealed class Slot
    {
        public int Attachment;
    }
}
