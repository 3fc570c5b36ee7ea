using System.Text;
using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// Reads a channel's control block and ring header for a report, on a mapping that may be read-only:
/// nothing here writes, locks or trusts what it reads beyond the accessor's bounds checks.
/// </summary>
internal static class ChannelInspector
{
    /// <summary>The channels among a segment's named objects.</summary>
    public static List<ChannelReport> Read(SegmentMemory memory, IEnumerable<NamedObjectInfo> objects, ProcessTable processes, Func<ShmHandle, long> payloadOf)
    {
        var reports = new List<ChannelReport>();
        foreach (NamedObjectInfo info in objects)
        {
            if (!info.Name.StartsWith(ChannelLayout.ObjectPrefix, StringComparison.Ordinal) || info.Size != ChannelControl.Size)
            {
                continue;
            }

            long control = payloadOf(info.Handle);
            reports.Add(ReadOne(memory, info.Name[ChannelLayout.ObjectPrefix.Length..], control, processes));
        }

        return reports;
    }

    private static ChannelReport ReadOne(SegmentMemory memory, string name, long control, ProcessTable processes)
    {
        ChannelControl c = memory.Ref<ChannelControl>(control);
        string state = Volatile.Read(ref memory.Ref<ChannelControl>(control).State) switch
        {
            ChannelControl.StateReady => "ready",
            ChannelControl.StateRemoved => "removed",
            _ => "initializing",
        };
        int typeNameLength = Math.Clamp(c.ElementTypeNameLength, 0, ChannelControl.ElementTypeNameCapacity);
        bool prioritized = (RingKind)c.RingKind == RingKind.Prioritized;
        bool unbounded = (RingKind)c.RingKind == RingKind.Unbounded || prioritized;
        var report = new ChannelReport
        {
            Name = name,
            State = state,
            ElementTypeName = Encoding.UTF8.GetString(memory.Span(control + ChannelControl.ElementTypeNameOffset, typeNameLength)),
            ElementKind = c.ElementKind switch
            {
                ChannelControl.ElementKindPlain => "unmanaged",
                ChannelControl.ElementKindRecords => "records",
                ChannelControl.ElementKindSerialized => "serialized",
                _ => "unknown",
            },
            SerializerIdentity = c.ElementKind == ChannelControl.ElementKindSerialized
                ? Encoding.UTF8.GetString(memory.Span(control + ChannelControl.SerializerIdentityOffset, Math.Clamp(c.SerializerIdentityLength, 0, ChannelControl.SerializerIdentityCapacity)))
                : string.Empty,
            MaxRecordSize = c.MaxRecordSize,
            OwnedHandles = Math.Clamp(c.OwnedHandleCount, 0, ChannelControl.MaxOwnedHandles),
            ElementSize = c.ElementSize,
            Capacity = unbounded ? int.MaxValue : c.Capacity,
            IsUnbounded = unbounded,
            ChunkCapacity = unbounded ? c.Capacity : 0,
            FullMode = (BoundedChannelFullMode)c.FullMode,
            SingleReader = (c.Flags & ChannelControl.FlagSingleReader) != 0,
            SingleWriter = (c.Flags & ChannelControl.FlagSingleWriter) != 0,
            Persistent = (c.Flags & ChannelControl.FlagPersistent) != 0,
            RetainUndelivered = (c.Flags & ChannelControl.FlagDiscardUndelivered) == 0,
            Ring = (RingKind)c.RingKind switch
            {
                RingKind.Spsc => "spsc",
                RingKind.Unbounded => "unbounded",
                RingKind.Prioritized => "prioritized",
                _ => "mpmc",
            },
            Endpoints = Endpoints(memory, control, c, processes),
        };

        if (state != "ready" && state != "removed")
        {
            return report;
        }

        long ring = c.RingOffset;
        long head = Volatile.Read(ref memory.Int64(ring + RingLayout.HeadOffset));
        long tail = Volatile.Read(ref memory.Int64(ring + RingLayout.TailOffset));
        long completion = Volatile.Read(ref memory.Int64(ring + RingLayout.CompletionStateOffset));
        var completionState = (RingCompletionState)(int)(completion & 0xFFFFFFFF);
        string? error = null;
        if (completionState is RingCompletionState.Faulted or RingCompletionState.Canceled)
        {
            int typeLength = Math.Clamp(Volatile.Read(ref memory.Int32(ring + RingLayout.CompletionTypeLengthOffset)), 0, RingLayout.MaxTypeNameBytes);
            int messageLength = Math.Clamp(Volatile.Read(ref memory.Int32(ring + RingLayout.CompletionMessageLengthOffset)), 0, RingLayout.MaxMessageBytes);
            string type = Encoding.UTF8.GetString(memory.Span(ring + RingLayout.CompletionTypeOffset, typeLength));
            string message = Encoding.UTF8.GetString(memory.Span(ring + RingLayout.CompletionMessageOffset, messageLength));
            error = type.Length == 0 ? null : $"{type}: {message}";
        }

        long chunks = 0;
        long chunkBytes = 0;
        long heapCapacity = 0;
        if (prioritized)
        {
            // The heap descriptor (PriorityLayout): the element array's capacity; a snapshot, clamped.
            heapCapacity = Math.Clamp(Volatile.Read(ref memory.Int64(ring + PriorityLayout.ArrayCapacityOffset)), 0, memory.MappedLength);
            chunks = heapCapacity == 0 ? 0 : 1;
            chunkBytes = heapCapacity * Math.Clamp(c.ElementSize, 0, 1 << 20);
        }
        else if (unbounded)
        {
            // The chain descriptor (ChainLayout): how many chunks, of how many bytes; snapshots, clamped.
            long first = Volatile.Read(ref memory.Int64(ring + ChainLayout.FirstIndexOffset));
            long last = Volatile.Read(ref memory.Int64(ring + ChainLayout.TailIndexOffset));
            chunks = Math.Clamp(last - first + 1, 0, memory.MappedLength);
            chunkBytes = chunks * Math.Clamp(Volatile.Read(ref memory.Int64(ring + ChainLayout.ChunkBytesOffset)), 0, memory.MappedLength);
        }

        long count = Math.Clamp(tail - head, 0, unbounded ? long.MaxValue : c.Capacity);
        bool completionSeen = completionState != RingCompletionState.Open && c.CompletionSeen != 0;
        return report with
        {
            Count = count,
            CompletionSeen = completionSeen,
            Retained = state == "ready" && !report.Persistent && report.RetainUndelivered && report.Endpoints.All(e => e.Liveness != ProcessLiveness.Alive) &&
                (count > 0 || (completionState != RingCompletionState.Open && !completionSeen)),
            ChunkCount = chunks,
            ChunkBytes = chunkBytes,
            HeapCapacity = heapCapacity,
            ComparerIdentity = prioritized ? Rings.PriorityRing<byte>.StoredIdentity(memory, ring) : null,
            Written = Volatile.Read(ref memory.Int64(ring + RingLayout.WrittenOffset)),
            Read = Volatile.Read(ref memory.Int64(ring + RingLayout.ReadOffset)),
            Dropped = Volatile.Read(ref memory.Int64(ring + RingLayout.DroppedOffset)),
            Lost = Volatile.Read(ref memory.Int64(ring + RingLayout.LostOffset)),
            Skipped = Volatile.Read(ref memory.Int64(ring + RingLayout.SkippedOffset)),
            WaitingReaders = Math.Max(0, Volatile.Read(ref memory.Int32(ring + RingLayout.ReadersEventWaitersOffset))),
            WaitingWriters = Math.Max(0, Volatile.Read(ref memory.Int32(ring + RingLayout.WritersEventWaitersOffset))),
            Completion = completionState switch
            {
                RingCompletionState.Open => "open",
                RingCompletionState.Completing or RingCompletionState.Completed => "completed",
                RingCompletionState.Faulted => "faulted",
                RingCompletionState.Canceled => "canceled",
                _ => "damaged",
            },
            CompletionError = error,
        };
    }

    private static List<ChannelEndpointReport> Endpoints(SegmentMemory memory, long control, in ChannelControl c, ProcessTable processes)
    {
        Dictionary<int, ProcessSlotInfo> slots = processes.Snapshot().ToDictionary(s => s.Index);
        var endpoints = new List<ChannelEndpointReport>();
        for (int i = 0; i < ChannelControl.EndpointCount; i++)
        {
            ChannelEndpoint row = memory.Ref<ChannelEndpoint>(ChannelLayout.EndpointOffset(control, i));
            if (row.Owner == 0)
            {
                continue;
            }

            var owner = new OwnerId(row.Owner);
            bool current = slots.TryGetValue(owner.Slot, out ProcessSlotInfo slot) && slot.Generation == owner.Generation;
            endpoints.Add(new ChannelEndpointReport
            {
                ProcessId = current ? slot.Pid : 0,
                Slot = owner.Slot,
                IsReader = (row.Roles & ChannelEndpoint.RoleReader) != 0,
                IsWriter = (row.Roles & ChannelEndpoint.RoleWriter) != 0,
                HoldsReaderLease = c.ReaderLease == row.Owner,
                HoldsWriterLease = c.WriterLease == row.Owner,
                Liveness = processes.IsAlive(owner) ? ProcessLiveness.Alive : ProcessLiveness.Dead,
            });
        }

        return endpoints;
    }
}
