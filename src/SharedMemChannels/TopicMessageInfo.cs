namespace SharedMemChannels;

/// <summary>The header of a received topic message (eCAL's: size, id, clock, time, hash, zero-copy flag) and what the subscriber missed before it.</summary>
/// <param name="Id">The message's sequence number in the topic (0, 1, ...).</param>
/// <param name="Clock">The publisher's counter when it sent the message.</param>
/// <param name="TimeUtc">When it was sent (UTC).</param>
/// <param name="Size">The payload's size in bytes.</param>
/// <param name="Hash">The payload's xxHash64, or 0 when the topic does not hash payloads.</param>
/// <param name="ZeroCopy">Whether the payload was written in place (zero copy) by the publisher.</param>
/// <param name="Dropped">Messages this subscriber missed just before this one (overwritten before it read them).</param>
public readonly record struct TopicMessageInfo(long Id, long Clock, DateTime TimeUtc, int Size, ulong Hash, bool ZeroCopy, long Dropped);
