namespace SharedMemChannels.Diagnostics;

/// <summary>A publish/subscribe topic (<see cref="SharedTopic"/>) as inspection reads it.</summary>
public sealed record TopicReport
{
    /// <summary>The topic's name.</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>"ready"; "removed" (by <see cref="SharedTopic.Remove(SharedSegment, string)"/>, still held by a process); or "damaged" when the control block is not one.</summary>
    public string State { get; init; } = string.Empty;

    /// <summary>"open"; "completed", "faulted" or "canceled" once its publisher completed it (<see cref="TopicPublisher.Complete(Exception?)"/>; a removed topic reads "faulted" with a <see cref="ChannelRemovedException"/>); "completing" while a completer writes the record.</summary>
    public string Completion { get; init; } = string.Empty;

    /// <summary>The completing error ("Type: message"), when it faulted or was canceled with one.</summary>
    public string? CompletionError { get; init; }

    /// <summary>Whether the topic outlives its users (<see cref="SharedTopicOptions.Persistent"/>).</summary>
    public bool Persistent { get; init; }

    /// <summary>What the publisher waits for under its acknowledgement timeout.</summary>
    public TopicAckPolicy AckPolicy { get; init; }

    /// <summary>What wakes its sleepers.</summary>
    public ChannelNotifier Notifier { get; init; }

    /// <summary>The typed messages it carries ("type serialized by identity", or an unmanaged type), or null while only bytes were used.</summary>
    public string? MessageType { get; init; }

    /// <summary>Open instances of the topic held by live processes (its references).</summary>
    public int References { get; init; }

    /// <summary>The buffers the publisher cycles through.</summary>
    public int BufferCount { get; init; }

    /// <summary>The payload bytes of a buffer.</summary>
    public int BufferSize { get; init; }

    /// <summary>Messages a late joiner gets first.</summary>
    public int HistoryDepth { get; init; }

    /// <summary>The acknowledgement timeout in milliseconds (0: none).</summary>
    public int AckTimeoutMs { get; init; }

    /// <summary>Messages published so far.</summary>
    public long MessageCount { get; init; }

    /// <summary>The publisher's process id (0 when there is none, or its slot was reused).</summary>
    public int PublisherProcessId { get; init; }

    /// <summary>Whether a publisher holds the topic, and whether it lives.</summary>
    public ProcessLiveness PublisherLiveness { get; init; }

    /// <summary>Whether a process holds the publisher end.</summary>
    public bool HasPublisher { get; init; }

    /// <summary>The subscribers: their processes, positions and drops.</summary>
    public IReadOnlyList<TopicSubscriberReport> Subscribers { get; init; } = [];
}

/// <summary>A subscriber of a topic.</summary>
public sealed record TopicSubscriberReport
{
    /// <summary>The subscribed process (0 when its slot was reused).</summary>
    public int ProcessId { get; init; }

    /// <summary>Whether the process lives.</summary>
    public ProcessLiveness Liveness { get; init; }

    /// <summary>The next message id it reads.</summary>
    public long Position { get; init; }

    /// <summary>Messages it missed.</summary>
    public long Drops { get; init; }
}
