namespace SharedMemChannels;

/// <summary>The shape of a <see cref="SharedTopic"/>, stored with it when it is made (eCAL's shared-memory settings).</summary>
public sealed class SharedTopicOptions
{
    /// <summary>The most buffers a topic has.</summary>
    public const int MaxBufferCount = 64;

    private int _bufferCount = 4;
    private int _minSize = 4096;
    private int _reserve;
    private int _historyDepth;
    private TimeSpan _ackTimeout = TimeSpan.Zero;

    /// <summary>
    /// How many buffers the publisher cycles through (eCAL's multi-buffering): a subscriber reading one
    /// never holds up the publisher filling the next; a subscriber more than this many messages behind loses
    /// the oldest (counted as drops). 4 by default, 1 to <see cref="MaxBufferCount"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Out of range.</exception>
    public int BufferCount
    {
        get => _bufferCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxBufferCount);
            _bufferCount = value;
        }
    }

    /// <summary>The payload bytes every buffer holds at least (eCAL's <c>min_size</c>); 4096 by default.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1, or more than 64 MiB.</exception>
    public int MinSize
    {
        get => _minSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 64 << 20);
            _minSize = value;
        }
    }

    /// <summary>
    /// Bytes added to every buffer beyond <see cref="MinSize"/> (eCAL's over-provisioning <c>reserve</c>, which eCAL
    /// gives as a percentage: a reserve of P % is <c>MinSize * P / 100</c> here); 0 by default.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or more than 64 MiB.</exception>
    public int Reserve
    {
        get => _reserve;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 64 << 20);
            _reserve = value;
        }
    }

    /// <summary>How many of the latest messages a subscriber that joins late receives first (iceoryx2's history); 0 by default, at most <see cref="BufferCount"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or more than <see cref="MaxBufferCount"/>.</exception>
    public int HistoryDepth
    {
        get => _historyDepth;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxBufferCount);
            _historyDepth = value;
        }
    }

    /// <summary>
    /// With a positive value, the publisher waits before each message until every live subscriber has
    /// acknowledged (read) the previous one, or this long has passed (eCAL's acknowledgement timeout);
    /// zero (the default) never waits. At most one minute.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, or above one minute.</exception>
    public TimeSpan AckTimeout
    {
        get => _ackTimeout;
        set
        {
            if (value < TimeSpan.Zero || value > TimeSpan.FromMinutes(1))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The acknowledgement timeout must be from zero to one minute.");
            }

            _ackTimeout = value;
        }
    }

    /// <summary>
    /// What the publisher waits for under a positive <see cref="AckTimeout"/>: the previous message read
    /// by every live subscriber (eCAL's, the default), or only the buffer it is about to overwrite
    /// (<see cref="TopicAckPolicy.FreeBuffer"/>: several messages in flight). Stored with the topic.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined policy.</exception>
    public TopicAckPolicy AckPolicy
    {
        get => _ackPolicy;
        set => _ackPolicy = Common.EnumArgument.Defined(value);
    }

    private TopicAckPolicy _ackPolicy;

    /// <summary>Whether every message carries an xxHash64 of its payload, checked by every subscriber on receipt.</summary>
    public bool HashPayloads { get; set; }

    /// <summary>
    /// Whether the topic outlives its users. False by default: a topic is reference counted across
    /// processes (every <see cref="SharedTopic"/> opened holds a reference until it, its publisher and its
    /// subscribers are disposed, or its process dies) and is removed from its segment, with its buffered
    /// messages, when the last reference goes. True keeps it until <see cref="SharedTopic.Remove(SharedSegment, string)"/>
    /// or the segment goes: a publisher may then publish and exit before a late subscriber joins for the history.
    /// </summary>
    public bool Persistent { get; set; }

    /// <summary>
    /// What wakes a sleeping subscriber (and a publisher waiting for acknowledgements): a futex word in the
    /// segment (the default), or a pair of POSIX or System V semaphores made with the topic and removed with
    /// it (RaftLib's notifier matrix), as for channels.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined notifier.</exception>
    public ChannelNotifier Notifier
    {
        get => _notifier;
        set => _notifier = Common.EnumArgument.Defined(value);
    }

    private ChannelNotifier _notifier;

    /// <summary>The payload bytes of one buffer: <see cref="MinSize"/> + <see cref="Reserve"/>.</summary>
    public int BufferSize => checked(MinSize + Reserve);
}
