using System.Runtime.InteropServices;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>
/// Who holds a lock, a block or a cache: a process-table slot and the generation of its claim. A slot
/// reused by another process gets a new generation, so an old owner id can never look alive again.
/// Packed in 31 bits: slot + 1 in the low 16 bits (0 means nobody), generation in the next 15.
/// </summary>
internal readonly record struct OwnerId(uint Value)
{
    public static OwnerId None => default;

    public bool IsNone => Value == 0;

    public int Slot => (int)(Value & 0xFFFF) - 1;

    public int Generation => (int)((Value >> 16) & 0x7FFF);

    public static OwnerId From(int slot, int generation) => new((uint)(slot + 1) | ((uint)(generation & 0x7FFF) << 16));

    public override string ToString() => IsNone ? "none" : $"slot {Slot}/gen {Generation}";
}

/// <summary>One row of the process table, as laid out in the segment.</summary>
[StructLayout(LayoutKind.Explicit, Size = SegmentLayout.ProcessSlotSize)]
internal struct ProcessSlot
{
    public const int Free = 0;
    public const int Claiming = 1;
    public const int Live = 2;
    public const int Reclaiming = 3;

    /// <summary>State in the low 32 bits, pid in the high 32: one CAS claims a slot and names the claimant.</summary>
    [FieldOffset(0)] public long StateAndPid;
    [FieldOffset(8)] public int Generation;
    [FieldOffset(12)] public uint Reclaimer;
    [FieldOffset(16)] public ulong StartTime;
    [FieldOffset(24)] public ulong PidNamespace;
    [FieldOffset(32)] public long AttachedUnixMs;

    public static long Pack(int state, int pid) => (uint)state | ((long)pid << 32);

    public static int StateOf(long stateAndPid) => (int)(stateAndPid & 0xFFFFFFFF);

    public static int PidOf(long stateAndPid) => (int)(stateAndPid >> 32);
}

/// <summary>A copy of one process-table row, for inspection.</summary>
internal readonly record struct ProcessSlotInfo(int Index, int State, int Pid, int Generation, ulong StartTime, ulong PidNamespace, long AttachedUnixMs, Liveness Liveness)
{
    public OwnerId Owner => OwnerId.From(Index, Generation);
}

/// <summary>
/// The table of processes attached to a segment. Each attachment claims a slot (pid, start time,
/// pid namespace, generation); detaching frees it; a slot whose process is dead is reclaimed by
/// whoever finds it, after the segment has released everything that process held.
/// </summary>
internal sealed class ProcessTable
{
    private readonly SegmentMemory _memory;

    public ProcessTable(SegmentMemory memory) => _memory = memory;

    public static int Capacity => SegmentLayout.ProcessTableSlots;

    private ref ProcessSlot SlotAt(int index) =>
        ref _memory.Ref<ProcessSlot>(SegmentLayout.ProcessTableOffset + ((long)index * SegmentLayout.ProcessSlotSize));

    /// <summary>Claims a free slot for <paramref name="me"/>; returns <see cref="OwnerId.None"/> when the table is full.</summary>
    public OwnerId TryClaim(ProcessIdentity me)
    {
        for (int i = 0; i < Capacity; i++)
        {
            ref ProcessSlot slot = ref SlotAt(i);
            long seen = Volatile.Read(ref slot.StateAndPid);
            if (ProcessSlot.StateOf(seen) != ProcessSlot.Free ||
                Interlocked.CompareExchange(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Claiming, me.Pid), seen) != seen)
            {
                continue;
            }

            return CompleteClaim(ref slot, i, me);
        }

        return OwnerId.None;
    }

    /// <summary>
    /// When the table is full: claims the slot of a dead process for <paramref name="me"/>, with a new
    /// generation. <paramref name="dead"/> is the old owner id, whose resources the caller must reclaim.
    /// </summary>
    public OwnerId TryTakeOverDeadSlot(ProcessIdentity me, out OwnerId dead)
    {
        dead = OwnerId.None;
        for (int i = 0; i < Capacity; i++)
        {
            ref ProcessSlot slot = ref SlotAt(i);
            long seen = Volatile.Read(ref slot.StateAndPid);
            int state = ProcessSlot.StateOf(seen);
            int generation = Volatile.Read(ref slot.Generation) & 0x7FFF;
            if ((state != ProcessSlot.Live && state != ProcessSlot.Claiming) || Probe(ref slot, seen) != Liveness.Dead ||
                Interlocked.CompareExchange(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Claiming, me.Pid), seen) != seen)
            {
                continue;
            }

            dead = OwnerId.From(i, generation);
            return CompleteClaim(ref slot, i, me);
        }

        return OwnerId.None;
    }

    /// <summary>
    /// Fills a slot this process has just CAS-ed to "claiming" under its pid, gives it a new generation and
    /// marks it live. The pid is in the slot from the CAS on, so a claimant that dies in here is still found dead.
    /// </summary>
    private static OwnerId CompleteClaim(ref ProcessSlot slot, int index, ProcessIdentity me)
    {
        Volatile.Write(ref slot.StartTime, me.StartTime);
        Volatile.Write(ref slot.PidNamespace, me.PidNamespace);
        Volatile.Write(ref slot.AttachedUnixMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Volatile.Write(ref slot.Reclaimer, 0);
        int generation = Interlocked.Increment(ref slot.Generation) & 0x7FFF;
        Volatile.Write(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Live, me.Pid));
        return OwnerId.From(index, generation);
    }

    /// <summary>Frees the slot of a detaching process.</summary>
    public void Release(OwnerId owner)
    {
        ref ProcessSlot slot = ref SlotAt(owner.Slot);
        long seen = Volatile.Read(ref slot.StateAndPid);
        if ((Volatile.Read(ref slot.Generation) & 0x7FFF) == owner.Generation && ProcessSlot.StateOf(seen) == ProcessSlot.Live)
        {
            ClearIdentity(ref slot);
            Interlocked.CompareExchange(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Free, 0), seen);
        }
    }

    /// <summary>Whether the process behind <paramref name="owner"/> still holds its claim and runs.</summary>
    public bool IsAlive(OwnerId owner)
    {
        if (owner.IsNone || (uint)owner.Slot >= (uint)Capacity)
        {
            return false;
        }

        ref ProcessSlot slot = ref SlotAt(owner.Slot);
        long stateAndPid = Volatile.Read(ref slot.StateAndPid);
        int state = ProcessSlot.StateOf(stateAndPid);
        if ((state != ProcessSlot.Live && state != ProcessSlot.Claiming) || (Volatile.Read(ref slot.Generation) & 0x7FFF) != owner.Generation)
        {
            return false;
        }

        return Probe(ref slot, stateAndPid) != Liveness.Dead;
    }

    /// <summary>
    /// Whether <paramref name="owner"/> can be an id this table handed out: a slot it has, no bit the id
    /// never uses, a generation the slot has reached. An id that cannot is damage in the word that holds
    /// it, never a dead process (a generation that wrapped past the id's reads as impossible too: the
    /// callers then keep what the id may hold, which is the safe side).
    /// </summary>
    public bool CouldHaveBeen(OwnerId owner)
    {
        if (owner.IsNone || (owner.Value & 0x8000_0000) != 0 || (uint)owner.Slot >= (uint)Capacity)
        {
            return false;
        }

        return owner.Generation <= (Volatile.Read(ref SlotAt(owner.Slot).Generation) & 0x7FFF);
    }

    /// <summary>Reads every slot in use.</summary>
    public List<ProcessSlotInfo> Snapshot()
    {
        var rows = new List<ProcessSlotInfo>();
        for (int i = 0; i < Capacity; i++)
        {
            ref ProcessSlot slot = ref SlotAt(i);
            long stateAndPid = Volatile.Read(ref slot.StateAndPid);
            int state = ProcessSlot.StateOf(stateAndPid);
            if (state == ProcessSlot.Free)
            {
                continue;
            }

            rows.Add(new ProcessSlotInfo(
                i,
                state,
                ProcessSlot.PidOf(stateAndPid),
                Volatile.Read(ref slot.Generation) & 0x7FFF,
                Volatile.Read(ref slot.StartTime),
                Volatile.Read(ref slot.PidNamespace),
                Volatile.Read(ref slot.AttachedUnixMs),
                state == ProcessSlot.Reclaiming ? Liveness.Dead : Probe(ref slot, stateAndPid)));
        }

        return rows;
    }

    /// <summary>
    /// If the process in slot <paramref name="index"/> is dead (or was being reclaimed by a process that
    /// died too), marks the slot as being reclaimed by <paramref name="reclaimer"/> and returns the dead
    /// owner id. The caller releases what that owner held, then calls <see cref="EndReclaim"/>.
    /// </summary>
    public bool TryBeginReclaim(int index, OwnerId reclaimer, out OwnerId dead)
    {
        dead = OwnerId.None;
        ref ProcessSlot slot = ref SlotAt(index);
        long stateAndPid = Volatile.Read(ref slot.StateAndPid);
        int state = ProcessSlot.StateOf(stateAndPid);
        int generation = Volatile.Read(ref slot.Generation) & 0x7FFF;
        switch (state)
        {
            case ProcessSlot.Live or ProcessSlot.Claiming:
                if (Probe(ref slot, stateAndPid) != Liveness.Dead)
                {
                    return false;
                }

                Volatile.Write(ref slot.Reclaimer, reclaimer.Value);
                if (Interlocked.CompareExchange(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Reclaiming, ProcessSlot.PidOf(stateAndPid)), stateAndPid) != stateAndPid)
                {
                    return false; // someone else got there first
                }

                break;

            case ProcessSlot.Reclaiming:
                // A reclaimer that died half way leaves the slot to the next one.
                uint previous = Volatile.Read(ref slot.Reclaimer);
                if (previous == reclaimer.Value || IsAlive(new OwnerId(previous)) ||
                    Interlocked.CompareExchange(ref slot.Reclaimer, reclaimer.Value, previous) != previous)
                {
                    return false;
                }

                break;

            default:
                return false;
        }

        dead = OwnerId.From(index, generation);
        return true;
    }

    /// <summary>Frees a slot whose dead owner's resources have been released.</summary>
    public void EndReclaim(OwnerId dead, OwnerId reclaimer)
    {
        ref ProcessSlot slot = ref SlotAt(dead.Slot);
        long stateAndPid = Volatile.Read(ref slot.StateAndPid);
        if (ProcessSlot.StateOf(stateAndPid) == ProcessSlot.Reclaiming && Volatile.Read(ref slot.Reclaimer) == reclaimer.Value)
        {
            ClearIdentity(ref slot);
            Interlocked.CompareExchange(ref slot.StateAndPid, ProcessSlot.Pack(ProcessSlot.Free, 0), stateAndPid);
        }
    }

    /// <summary>
    /// Forgets the old occupant's start time before a slot is freed, so that the next claimant, whose
    /// pid lands in the slot before its start time does, is never judged by a stale start time.
    /// </summary>
    private static void ClearIdentity(ref ProcessSlot slot)
    {
        Volatile.Write(ref slot.StartTime, 0);
        Volatile.Write(ref slot.PidNamespace, 0);
    }

    private static Liveness Probe(ref ProcessSlot slot, long stateAndPid)
    {
        var identity = new ProcessIdentity(ProcessSlot.PidOf(stateAndPid), Volatile.Read(ref slot.StartTime), Volatile.Read(ref slot.PidNamespace));
        return PlatformServices.Processes.Probe(identity);
    }
}
