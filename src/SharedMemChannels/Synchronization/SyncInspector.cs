using SharedMemChannels.Diagnostics;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>Reads synchronization objects' control blocks for a report, on a mapping that may be read-only; nothing here writes or trusts what it reads.</summary>
internal static class SyncInspector
{
    public static List<SyncObjectReport> Read(SegmentMemory memory, IEnumerable<NamedObjectInfo> objects, ProcessTable processes, Func<ShmHandle, long> payloadOf)
    {
        var reports = new List<SyncObjectReport>();
        Dictionary<int, ProcessSlotInfo>? slots = null;
        foreach (NamedObjectInfo info in objects)
        {
            if (!info.Name.StartsWith(SyncLayout.ObjectPrefix, StringComparison.Ordinal) || info.Size != SyncControl.Size)
            {
                continue;
            }

            SyncControl c = memory.Ref<SyncControl>(payloadOf(info.Handle));
            var report = new SyncObjectReport
            {
                Name = info.Name[SyncLayout.ObjectPrefix.Length..],
                Kind = c.Magic == SyncControl.MagicValue && c.Version == SyncControl.CurrentVersion ? SyncLayout.KindName(c.Kind) : "damaged",
                Waiters = Math.Max(0, c.Waiters),
                Acquisitions = c.Acquisitions,
            };
            switch (c.Kind)
            {
                case SyncControl.KindMutex when c.State != 0:
                    var holder = new OwnerId((uint)c.State);
                    slots ??= processes.Snapshot().ToDictionary(s => s.Index);
                    bool current = slots.TryGetValue(holder.Slot, out ProcessSlotInfo slot) && slot.Generation == holder.Generation;
                    report = report with
                    {
                        IsHeld = true,
                        HolderProcessId = current ? slot.Pid : 0,
                        HolderLiveness = processes.IsAlive(holder) ? ProcessLiveness.Alive : ProcessLiveness.Dead,
                    };
                    break;
                case SyncControl.KindEvent:
                    report = report with { IsSet = c.State != 0, AutoReset = (c.Flags & SyncControl.FlagAutoReset) != 0 };
                    break;
                case SyncControl.KindSemaphore:
                    report = report with { Count = c.State, MaximumCount = c.Maximum };
                    break;
            }

            reports.Add(report);
        }

        return reports;
    }
}
