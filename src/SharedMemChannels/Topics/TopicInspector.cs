using SharedMemChannels.Diagnostics;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Topics;

/// <summary>Reads topics' control blocks for a report, on a mapping that may be read-only; nothing here writes or trusts what it reads.</summary>
internal static class TopicInspector
{
    public static List<TopicReport> Read(SegmentMemory memory, IEnumerable<NamedObjectInfo> objects, ProcessTable processes, Func<ShmHandle, long> payloadOf)
    {
        var reports = new List<TopicReport>();
        Dictionary<int, ProcessSlotInfo>? slots = null;
        foreach (NamedObjectInfo info in objects)
        {
            if (!info.Name.StartsWith(TopicLayout.ObjectPrefix, StringComparison.Ordinal) || info.Size != TopicControl.Size)
            {
                continue;
            }

            long control = payloadOf(info.Handle);
            TopicControl c = memory.Ref<TopicControl>(control);
            slots ??= processes.Snapshot().ToDictionary(s => s.Index);
            int PidOf(uint owner)
            {
                var id = new OwnerId(owner);
                return slots.TryGetValue(id.Slot, out ProcessSlotInfo slot) && slot.Generation == id.Generation ? slot.Pid : 0;
            }

            var subscribers = new List<TopicSubscriberReport>();
            for (int i = 0; i < TopicControl.SubscriberCount; i++)
            {
                TopicSubscriberRow row = memory.Ref<TopicSubscriberRow>(TopicLayout.SubscriberOffset(control, i));
                if (row.Owner != 0)
                {
                    subscribers.Add(new TopicSubscriberReport
                    {
                        ProcessId = PidOf(row.Owner),
                        Liveness = processes.IsAlive(new OwnerId(row.Owner)) ? ProcessLiveness.Alive : ProcessLiveness.Dead,
                        Position = row.Position,
                        Drops = row.Drops,
                    });
                }
            }

            int references = 0;
            for (int i = 0; i < TopicControl.ReferenceCount; i++)
            {
                uint owner = memory.Ref<uint>(TopicLayout.ReferenceOffset(control, i));
                references += owner != 0 && processes.IsAlive(new OwnerId(owner)) ? 1 : 0;
            }

            bool valid = c.Magic == TopicControl.MagicValue && c.Version == TopicControl.CurrentVersion && Enum.IsDefined((ChannelNotifier)c.Notifier.Kind);
            int typeLength = Math.Clamp(c.MessageTypeLength, 0, TopicControl.MessageTypeCapacity);
            (string completion, string? completionError) = ReadCompletion(memory, control);
            reports.Add(new TopicReport
            {
                Completion = completion,
                CompletionError = completionError,
                Name = info.Name[TopicLayout.ObjectPrefix.Length..],
                State = !valid ? "damaged" : c.State switch
                {
                    TopicControl.StateReady => "ready",
                    TopicControl.StateRemoved => "removed",
                    _ => "damaged",
                },
                Persistent = (c.Flags & TopicControl.FlagPersistent) != 0,
                AckPolicy = (c.Flags & TopicControl.FlagAckFreeBuffer) != 0 ? TopicAckPolicy.FreeBuffer : TopicAckPolicy.PreviousMessage,
                Notifier = valid ? (ChannelNotifier)c.Notifier.Kind : ChannelNotifier.Futex,
                MessageType = c.MessageTypeFingerprint == 0 || typeLength == 0
                    ? null
                    : System.Text.Encoding.UTF8.GetString(memory.Span(control + TopicControl.MessageTypeOffset, typeLength)),
                References = references,
                BufferCount = c.BufferCount,
                BufferSize = c.BufferSize,
                HistoryDepth = c.HistoryDepth,
                AckTimeoutMs = c.AckTimeoutMs,
                MessageCount = c.NextSequence,
                HasPublisher = c.PublisherLease != 0,
                PublisherProcessId = c.PublisherLease == 0 ? 0 : PidOf(c.PublisherLease),
                PublisherLiveness = c.PublisherLease != 0 && processes.IsAlive(new OwnerId(c.PublisherLease)) ? ProcessLiveness.Alive : ProcessLiveness.Dead,
                Subscribers = subscribers,
            });
        }

        return reports;
    }

    /// <summary>The completion record as text; lengths clamped to the record (a torn or damaged record reads short, never outside).</summary>
    private static (string State, string? Error) ReadCompletion(SegmentMemory memory, long control)
    {
        long word = Volatile.Read(ref memory.Int64(control + TopicControl.CompletionStateOffset));
        var state = (Rings.RingCompletionState)(int)(word & 0xFFFFFFFF);
        string? error = null;
        if (state is Rings.RingCompletionState.Faulted or Rings.RingCompletionState.Canceled)
        {
            int typeLength = Math.Clamp(Volatile.Read(ref memory.Int32(control + TopicControl.CompletionTypeLengthOffset)), 0, TopicControl.CompletionTypeCapacity);
            int messageLength = Math.Clamp(Volatile.Read(ref memory.Int32(control + TopicControl.CompletionMessageLengthOffset)), 0, TopicControl.CompletionMessageCapacity);
            string type = System.Text.Encoding.UTF8.GetString(memory.Span(control + TopicControl.CompletionTypeOffset, typeLength));
            string message = System.Text.Encoding.UTF8.GetString(memory.Span(control + TopicControl.CompletionMessageOffset, messageLength));
            error = type.Length == 0 && message.Length == 0 ? null : $"{type}: {message}";
        }

        return (state switch
        {
            Rings.RingCompletionState.Open => "open",
            Rings.RingCompletionState.Completing => "completing",
            Rings.RingCompletionState.Completed => "completed",
            Rings.RingCompletionState.Faulted => "faulted",
            Rings.RingCompletionState.Canceled => "canceled",
            _ => "damaged",
        }, error);
    }
}
