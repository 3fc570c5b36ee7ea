using SharedMemChannels.Topics;

namespace SharedMemChannels;

/// <summary>
/// A topic message borrowed in place (zero copy): <see cref="Payload"/> is the publisher's buffer itself,
/// held for this subscriber until disposed. While it is held the publisher waits (at most the topic's
/// acknowledgement timeout; not at all without one) before it overwrites that buffer; <see cref="IsIntact"/>
/// says whether it did. Dispose it promptly: it is the acknowledgement of the message.
/// </summary>
public readonly struct TopicMessage : IDisposable
{
    private readonly TopicCore? _core;
    private readonly int _row;
    private readonly long _payload;
    private readonly long _version;

    internal TopicMessage(TopicCore core, int row, long payload, long version, TopicMessageInfo info)
    {
        _core = core;
        _row = row;
        _payload = payload;
        _version = version;
        Info = info;
    }

    /// <summary>The message's header.</summary>
    public TopicMessageInfo Info { get; }

    /// <summary>The payload, in the publisher's buffer.</summary>
    /// <exception cref="ObjectDisposedException">The message was released (or is a default one).</exception>
    public ReadOnlySpan<byte> Payload
    {
        get
        {
            if (!IsHeld)
            {
                throw new ObjectDisposedException(nameof(TopicMessage), "The borrowed message was released.");
            }

            return _core!.Segment.Memory.Span(_payload, Info.Size);
        }
    }

    /// <summary>Whether the buffer still holds this message (false once the publisher overwrote it after its timeout).</summary>
    public bool IsIntact => _core is not null && !_core.Segment.IsDetached && _core.IsIntact(_payload, _version);

    /// <summary>Releases the buffer to the publisher and acknowledges the message. A second call does nothing.</summary>
    public void Dispose()
    {
        if (IsHeld)
        {
            _core!.ReleaseBorrow(_row, Info.Id, _payload, _version);
        }
    }

    /// <summary>
    /// Whether the subscriber's row still holds this borrow: the buffer and the version it was borrowed
    /// at (a copy of a message released before cannot release, or read, a later borrow of the same row).
    /// </summary>
    private bool IsHeld
    {
        get
        {
            if (_core is null || _core.Segment.IsDetached)
            {
                return false;
            }

            ref Topics.TopicSubscriberRow row = ref _core.Row(_row);
            return Volatile.Read(ref row.HeldBuffer) != 0 && Volatile.Read(ref row.HeldVersion) == _version; // a version is one message's
        }
    }
}
