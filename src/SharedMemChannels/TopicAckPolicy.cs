namespace SharedMemChannels;

/// <summary>What a topic's publisher waits for, when <see cref="SharedTopicOptions.AckTimeout"/> is positive, before it writes a message.</summary>
public enum TopicAckPolicy
{
    /// <summary>
    /// eCAL's send/ack: every live subscriber has read the previous message. One message in flight at a
    /// time; the publisher runs at the pace of the slowest subscriber's wake-up.
    /// </summary>
    PreviousMessage = 0,

    /// <summary>
    /// iceoryx2's blocking publisher: every live subscriber has read the message the next buffer still
    /// holds (the one <see cref="SharedTopicOptions.BufferCount"/> messages back). Up to that many messages
    /// in flight; still lossless for subscribers that keep up within the timeout.
    /// </summary>
    FreeBuffer = 1,
}
