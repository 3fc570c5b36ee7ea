using System.Text.Json.Serialization;
using SharedMemChannels;
using SharedMemChannels.Diagnostics;

namespace Shmc;

/// <summary>
/// One sample of <c>shmc watch</c>: what a <see cref="SegmentReport"/> says now, with rates per second
/// from the difference to the previous sample. A rate is null when there is nothing to compare with
/// (the first sample, an object that just appeared, or a counter that went back because the object was
/// made anew under the same name): "-" in tables, null in JSON.
/// </summary>
internal sealed record WatchSample
{
    /// <summary>When the segment was read (UTC).</summary>
    public required DateTimeOffset Time { get; init; }

    /// <summary>The segment's name.</summary>
    public required string Segment { get; init; }

    /// <summary>The backend the segment was found in.</summary>
    public required SharedMemoryBackend Backend { get; init; }

    /// <summary>Seconds since the previous sample: what the rates are divided by; null for the first.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? Seconds { get; init; }

    /// <summary>The process-table slots in use.</summary>
    public required IReadOnlyList<WatchProcess> Processes { get; init; }

    /// <summary>How many of <see cref="Processes"/> are not known to be dead.</summary>
    public int LiveProcessCount => Processes.Count(p => p.Liveness != ProcessLiveness.Dead);

    /// <summary>The heap's use, or null when it was not read.</summary>
    public WatchHeap? Heap { get; init; }

    /// <summary>The channels, in the report's order.</summary>
    public required IReadOnlyList<WatchChannel> Channels { get; init; }

    /// <summary>The topics, in the report's order.</summary>
    public required IReadOnlyList<WatchTopic> Topics { get; init; }

    /// <summary>
    /// The sample of <paramref name="report"/>, with rates against <paramref name="previous"/> taken
    /// <paramref name="seconds"/> earlier. A previous report of another segment incarnation (another
    /// creation time: removed and made again between samples) gives no rates at all.
    /// </summary>
    public static WatchSample From(SegmentReport report, DateTimeOffset time, SegmentReport? previous, double seconds)
    {
        if (previous is not null && (previous.CreationTime != report.CreationTime || previous.Backend != report.Backend))
        {
            previous = null;
        }

        // Names are unique in a segment's directory; a channel and a topic never share one.
        Dictionary<string, ChannelReport> channelsBefore = previous?.Channels.ToDictionary(c => c.Name, StringComparer.Ordinal) ?? [];
        Dictionary<string, TopicReport> topicsBefore = previous?.Topics.ToDictionary(t => t.Name, StringComparer.Ordinal) ?? [];
        return new WatchSample
        {
            Time = time,
            Segment = report.Name,
            Backend = report.Backend,
            Seconds = previous is null ? null : seconds,
            Processes = [.. report.Processes.Select(p => new WatchProcess { Slot = p.Slot, ProcessId = p.ProcessId, State = p.State, Liveness = p.Liveness })],
            Heap = report.Heap is { } h ? new WatchHeap { Capacity = h.Capacity, UsedBytes = h.UsedBytes, CachedBytes = h.CachedBytes, FreeBytes = h.FreeBytes } : null,
            Channels = [.. report.Channels.Select(c => WatchChannel.From(c, channelsBefore.GetValueOrDefault(c.Name), seconds))],
            Topics = [.. report.Topics.Select(t => WatchTopic.From(t, topicsBefore.GetValueOrDefault(t.Name), seconds))],
        };
    }

    /// <summary>
    /// Per second from <paramref name="before"/> to <paramref name="now"/>; null without a previous value,
    /// or when the counter went back (the object was made anew: a negative rate would be a lie).
    /// </summary>
    public static double? Rate(long now, long? before, double seconds) =>
        before is { } b && now >= b && seconds > 0 ? (now - b) / seconds : null;
}

/// <summary>A process-table slot in use.</summary>
internal sealed record WatchProcess
{
    /// <summary>The slot's index.</summary>
    public int Slot { get; init; }

    /// <summary>The process id.</summary>
    public int ProcessId { get; init; }

    /// <summary>The slot's state.</summary>
    public ProcessSlotState State { get; init; }

    /// <summary>Whether the process still runs.</summary>
    public ProcessLiveness Liveness { get; init; }
}

/// <summary>The heap's use.</summary>
internal sealed record WatchHeap
{
    /// <summary>The heap's bytes.</summary>
    public long Capacity { get; init; }

    /// <summary>Bytes in allocated blocks.</summary>
    public long UsedBytes { get; init; }

    /// <summary>Bytes in per-thread caches.</summary>
    public long CachedBytes { get; init; }

    /// <summary>Free bytes.</summary>
    public long FreeBytes { get; init; }
}

/// <summary>A channel: its counters now and their rates.</summary>
internal sealed record WatchChannel
{
    /// <summary>The channel's name.</summary>
    public required string Name { get; init; }

    /// <summary>Ready, initializing or removed.</summary>
    public required string State { get; init; }

    /// <summary>The capacity; null for an unbounded channel.</summary>
    public int? Capacity { get; init; }

    /// <summary>Items queued now.</summary>
    public long Count { get; init; }

    /// <summary>Items written since the channel was made.</summary>
    public long Written { get; init; }

    /// <summary>Items read since the channel was made.</summary>
    public long Read { get; init; }

    /// <summary>Items a drop mode discarded.</summary>
    public long Dropped { get; init; }

    /// <summary>Items written per second since the previous sample.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? WrittenPerSecond { get; init; }

    /// <summary>Items read per second since the previous sample.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? ReadPerSecond { get; init; }

    /// <summary>Items dropped per second since the previous sample.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? DroppedPerSecond { get; init; }

    /// <summary>Readers sleeping until something is written.</summary>
    public int WaitingReaders { get; init; }

    /// <summary>Writers sleeping until something is read.</summary>
    public int WaitingWriters { get; init; }

    /// <summary>"open", "completed", "faulted" or "canceled".</summary>
    public required string Completion { get; init; }

    /// <summary>The completing error, when there is one.</summary>
    public string? CompletionError { get; init; }

    /// <summary>The channel <paramref name="now"/>, with rates against <paramref name="before"/> (null: it just appeared).</summary>
    public static WatchChannel From(ChannelReport now, ChannelReport? before, double seconds)
    {
        // A channel made anew under the same name starts its counters again: no rate rather than a wrong one.
        if (before is not null && now.Written < before.Written)
        {
            before = null;
        }

        return new WatchChannel
        {
            Name = now.Name,
            State = now.State,
            Capacity = now.IsUnbounded ? null : now.Capacity,
            Count = now.Count,
            Written = now.Written,
            Read = now.Read,
            Dropped = now.Dropped,
            WrittenPerSecond = WatchSample.Rate(now.Written, before?.Written, seconds),
            ReadPerSecond = WatchSample.Rate(now.Read, before?.Read, seconds),
            DroppedPerSecond = WatchSample.Rate(now.Dropped, before?.Dropped, seconds),
            WaitingReaders = now.WaitingReaders,
            WaitingWriters = now.WaitingWriters,
            Completion = now.Completion,
            CompletionError = now.CompletionError,
        };
    }
}

/// <summary>A topic: its message count and rate, its publisher and its subscribers.</summary>
internal sealed record WatchTopic
{
    /// <summary>The topic's name.</summary>
    public required string Name { get; init; }

    /// <summary>"ready" or "damaged".</summary>
    public required string State { get; init; }

    /// <summary>Messages published so far.</summary>
    public long MessageCount { get; init; }

    /// <summary>Messages published per second since the previous sample.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? MessagesPerSecond { get; init; }

    /// <summary>Whether a process holds the publisher end.</summary>
    public bool HasPublisher { get; init; }

    /// <summary>The publisher's process id (0: none, or its slot was reused).</summary>
    public int PublisherProcessId { get; init; }

    /// <summary>Whether the publisher lives.</summary>
    public ProcessLiveness PublisherLiveness { get; init; }

    /// <summary>The subscribers.</summary>
    public required IReadOnlyList<WatchSubscriber> Subscribers { get; init; }

    /// <summary>The topic <paramref name="now"/>, with rates against <paramref name="before"/> (null: it just appeared).</summary>
    public static WatchTopic From(TopicReport now, TopicReport? before, double seconds)
    {
        if (before is not null && now.MessageCount < before.MessageCount)
        {
            before = null;
        }

        // Subscribers have no name: a process and its place among that process's subscribers identify one.
        Dictionary<(int, int), TopicSubscriberReport> subscribersBefore = before is null ? [] : Keyed(before.Subscribers).ToDictionary(k => k.Key, k => k.Subscriber);
        return new WatchTopic
        {
            Name = now.Name,
            State = now.State,
            MessageCount = now.MessageCount,
            MessagesPerSecond = WatchSample.Rate(now.MessageCount, before?.MessageCount, seconds),
            HasPublisher = now.HasPublisher,
            PublisherProcessId = now.PublisherProcessId,
            PublisherLiveness = now.PublisherLiveness,
            Subscribers = [.. Keyed(now.Subscribers).Select(k => WatchSubscriber.From(k.Subscriber, now.MessageCount, subscribersBefore.GetValueOrDefault(k.Key), seconds))],
        };
    }

    private static IEnumerable<((int, int) Key, TopicSubscriberReport Subscriber)> Keyed(IEnumerable<TopicSubscriberReport> subscribers)
    {
        var seen = new Dictionary<int, int>();
        foreach (TopicSubscriberReport s in subscribers)
        {
            int index = seen.GetValueOrDefault(s.ProcessId);
            seen[s.ProcessId] = index + 1;
            yield return ((s.ProcessId, index), s);
        }
    }
}

/// <summary>A subscriber of a topic: how far behind it is and what it missed.</summary>
internal sealed record WatchSubscriber
{
    /// <summary>The subscribed process (0 when its slot was reused).</summary>
    public int ProcessId { get; init; }

    /// <summary>Whether the process lives.</summary>
    public ProcessLiveness Liveness { get; init; }

    /// <summary>The next message id it reads.</summary>
    public long Position { get; init; }

    /// <summary>Messages published that it has not read yet.</summary>
    public long Lag { get; init; }

    /// <summary>Messages it missed.</summary>
    public long Drops { get; init; }

    /// <summary>Messages it missed per second since the previous sample.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public double? DropsPerSecond { get; init; }

    /// <summary>The subscriber <paramref name="now"/>, with its drop rate against <paramref name="before"/>.</summary>
    public static WatchSubscriber From(TopicSubscriberReport now, long messageCount, TopicSubscriberReport? before, double seconds) => new()
    {
        ProcessId = now.ProcessId,
        Liveness = now.Liveness,
        Position = now.Position,
        Lag = Math.Max(0, messageCount - now.Position),
        Drops = now.Drops,
        DropsPerSecond = WatchSample.Rate(now.Drops, before?.Drops, seconds),
    };
}
