using System.Threading.Channels;

namespace SharedMemChannels;

/// <summary>
/// How a <see cref="SharedChannel{T}"/> is made: the options of <see cref="BoundedChannelOptions"/>
/// (and <see cref="UnboundedChannelOptions"/>, with <see cref="ChunkCapacity"/>), with their meaning
/// across processes, and how a waiting reader or writer waits.
/// </summary>
/// <remarks>
/// <para>
/// One class serves every kind of channel, but a setting that does not apply to the kind being made is
/// refused, never ignored: the factories throw an <see cref="ArgumentException"/> (parameter
/// <c>options</c>) for a <see cref="Capacity"/> (set by the constructor or the property) or a
/// <see cref="FullMode"/> given to an unbounded channel, a <see cref="ChunkCapacity"/> given to a bounded
/// one, and a <see cref="MaxRecordSize"/> given to a channel of unmanaged elements (it applies to record
/// and serialized channels). Settings left at their defaults are never refused:
/// <c>new SharedChannelOptions()</c> suits every kind, <c>new SharedChannelOptions(capacity)</c> suits
/// bounded channels, as <see cref="BoundedChannelOptions"/> and <see cref="UnboundedChannelOptions"/> do
/// in the BCL.
/// </para>
/// <para>
/// <see cref="Capacity"/>, <see cref="FullMode"/>, <see cref="SingleReader"/> and
/// <see cref="SingleWriter"/> (for an unbounded channel: <see cref="ChunkCapacity"/>,
/// <see cref="SingleReader"/> and <see cref="SingleWriter"/>) shape the shared layout: they are stored
/// with the channel, and a process that opens it with other values gets an
/// <see cref="ArgumentException"/> instead of a channel that silently behaves otherwise. <see cref="AllowSynchronousContinuations"/>, <see cref="SpinCount"/>
/// and <see cref="YieldCount"/> are each process's own.
/// </para>
/// <para>
/// <see cref="SingleReader"/> and <see cref="SingleWriter"/> are enforced across processes: the first
/// process that reads (writes) holds the reader (writer) end; another process that tries is refused
/// with an <see cref="InvalidOperationException"/> while the holder lives, and takes the end over once
/// the holder has died or disposed its channel. Threads of the holding process share the end, and
/// must not read (write) concurrently, as with the BCL's channels.
/// </para>
/// </remarks>
public sealed class SharedChannelOptions
{
    /// <summary>The largest capacity a shared channel accepts.</summary>
    public const int MaxCapacity = 1 << 26;

    /// <summary>The capacity of options made without one (<see cref="SharedChannelOptions()"/>).</summary>
    public const int DefaultCapacity = 1024;

    /// <summary>The default <see cref="ChunkCapacity"/>: elements per chunk of an unbounded channel.</summary>
    public const int DefaultChunkCapacity = 1024;

    /// <summary>The largest <see cref="ChunkCapacity"/>.</summary>
    public const int MaxChunkCapacity = Rings.ChainLayout.MaxChunkCapacity;

    /// <summary>The default spin budget: polls before a waiter yields.</summary>
    public const int DefaultSpinCount = 100;

    /// <summary>The default yields before a waiter sleeps in the kernel.</summary>
    public const int DefaultYieldCount = 2;

    /// <summary>The default <see cref="MaxRecordSize"/>: 1 MiB.</summary>
    public const int DefaultMaxRecordSize = 1 << 20;

    /// <summary>The largest <see cref="MaxRecordSize"/>: the largest heap allocation less a record's 32-byte header.</summary>
    public const int MaxRecordSizeLimit = SharedSegment.MaxAllocationSize - Records.RecordHeader.Size;

    private int _capacity;
    private int _chunkCapacity = DefaultChunkCapacity;
    private int _maxRecordSize = DefaultMaxRecordSize;
    private BoundedChannelFullMode _fullMode;
    private int _spinCount = DefaultSpinCount;
    private int _yieldCount = DefaultYieldCount;
    private KindSettings _given; // the kind-specific settings given (constructor or setter), even to their defaults

    /// <summary>
    /// Options with the defaults, for any kind of channel: <see cref="DefaultCapacity"/> items for a bounded
    /// channel, chunks of <see cref="DefaultChunkCapacity"/> for an unbounded one
    /// (<c>SharedChannel.CreateUnbounded&lt;T&gt;(segment, name, new SharedChannelOptions { SingleReader = true })</c>).
    /// </summary>
    public SharedChannelOptions()
    {
        _capacity = DefaultCapacity;
    }

    /// <summary>Options for a bounded channel of <paramref name="capacity"/> items (an unbounded channel refuses them).</summary>
    /// <param name="capacity">How many items the channel holds, 1 to <see cref="MaxCapacity"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is out of range.</exception>
    public SharedChannelOptions(int capacity)
    {
        ValidateCapacity(capacity, nameof(capacity));
        _capacity = capacity;
        _given = KindSettings.Capacity;
    }

    /// <summary>The settings that apply to one kind of channel only.</summary>
    [Flags]
    private enum KindSettings
    {
        None = 0,
        Capacity = 1,
        FullMode = 2,
        ChunkCapacity = 4,
        MaxRecordSize = 8,
    }

    /// <summary>
    /// How many items a bounded channel holds: exactly this many (a capacity of 3 holds 3), any value from
    /// 1 to <see cref="MaxCapacity"/>; <see cref="DefaultCapacity"/> unless given. A capacity of 0 (the BCL's
    /// rendezvous channel) is not supported across processes. An unbounded channel has none: given to one
    /// (here or through the constructor), it is an <see cref="ArgumentException"/> (see <see cref="ChunkCapacity"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of range.</exception>
    public int Capacity
    {
        get => _capacity;
        set
        {
            ValidateCapacity(value, nameof(value));
            _capacity = value;
            _given |= KindSettings.Capacity;
        }
    }

    /// <summary>
    /// Elements per chunk of an unbounded channel (<see cref="SharedChannel.CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>): the
    /// queue takes a chunk of this many elements from the segment's heap each time it grows past the
    /// chunks it has, and gives chunks back as readers pass them. 1 to <see cref="MaxChunkCapacity"/>,
    /// <see cref="DefaultChunkCapacity"/> by default; stored with the channel. Bigger chunks visit the
    /// heap less often; smaller ones give memory back sooner. A bounded channel has no chunks: given to
    /// one, it is an <see cref="ArgumentException"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of range.</exception>
    public int ChunkCapacity
    {
        get => _chunkCapacity;
        set
        {
            if (value < 1 || value > MaxChunkCapacity)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"The chunk capacity must be from 1 to {MaxChunkCapacity}.");
            }

            _chunkCapacity = value;
            _given |= KindSettings.ChunkCapacity;
        }
    }

    /// <summary>Whether these options make (or describe) an unbounded channel: set by the unbounded factories and when opening one.</summary>
    internal bool IsUnbounded { get; set; }

    /// <summary>
    /// What a write into a full bounded channel does. <see cref="BoundedChannelFullMode.Wait"/> by default.
    /// An unbounded channel is never full: given to one, it is an <see cref="ArgumentException"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined mode.</exception>
    public BoundedChannelFullMode FullMode
    {
        get => _fullMode;
        set
        {
            if ((uint)value > (uint)BoundedChannelFullMode.DropWrite)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown full mode.");
            }

            _fullMode = value;
            _given |= KindSettings.FullMode;
        }
    }

    /// <summary>
    /// What wakes sleeping readers and writers: futex words (the default), POSIX named semaphores or System V
    /// semaphores (RaftLib's notifier matrix). Stored with the channel when it is made.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined notifier.</exception>
    public ChannelNotifier Notifier
    {
        get => _notifier;
        set => _notifier = Common.EnumArgument.Defined(value);
    }

    /// <summary>
    /// Record channels (<see cref="SharedChannel.CreateRecords"/>): the largest record a writer may
    /// allocate, in bytes; 1 MiB (<see cref="DefaultMaxRecordSize"/>) by default, at most
    /// <see cref="MaxRecordSizeLimit"/>. Stored with the channel like the capacity: opening it with
    /// another value is an <see cref="ArgumentException"/>. Serialized channels (made with an
    /// <see cref="ISharedSerializer{T}"/>) carry their items as records and take it too. A channel of
    /// unmanaged elements has no records: given to one, it is an <see cref="ArgumentException"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1 or above <see cref="MaxRecordSizeLimit"/>.</exception>
    public int MaxRecordSize
    {
        get => _maxRecordSize;
        set
        {
            if (value < 1 || value > MaxRecordSizeLimit)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"The largest record must be from 1 to {MaxRecordSizeLimit} bytes.");
            }

            _maxRecordSize = value;
            _given |= KindSettings.MaxRecordSize;
        }
    }

    /// <summary>Whether one process at a time reads (enforced across processes; see the remarks). False by default.</summary>
    public bool SingleReader { get; set; }

    /// <summary>Whether one process at a time writes (enforced across processes; see the remarks). False by default.</summary>
    public bool SingleWriter { get; set; }

    /// <summary>
    /// Whether the channel outlives its users even when it holds nothing. False by default: a channel is
    /// reference counted across processes (each process that opens it holds a reference until it disposes
    /// its channel or dies), and a drained one is removed from its segment when the last reference goes, as
    /// RaftLib's channels are (one that still holds items stays, see <see cref="RetainUndelivered"/>). True
    /// keeps it, drained or not, until <see cref="SharedChannel.Remove(SharedSegment, string)"/> or the
    /// segment goes. Stored with the channel when it is made.
    /// </summary>
    public bool Persistent { get; set; }

    /// <summary>
    /// Whether a channel that still holds items, or a completion no reader has seen, when its last
    /// reference goes (disposed, or its process killed) stays with them until a reader takes them or
    /// <see cref="SharedChannel.Remove(SharedSegment, string)"/> removes it. True by default: an item whose
    /// write returned is committed, so a writer may fill a channel, complete it and exit before any reader
    /// starts, and the reader still gets every item and the completion (a segment made for the channel, or
    /// with <see cref="SegmentOptions.RemoveOnLastDetach"/>, stays as long as it holds such a channel).
    /// False is RaftLib's rule: the channel goes with its last reference and with what it holds. Stored with
    /// the channel when it is made; opening it with the other value is an <see cref="ArgumentException"/>.
    /// </summary>
    public bool RetainUndelivered { get; set; } = true;

    /// <summary>
    /// Whether this process's continuations may run inline on the thread that completes them (this
    /// process's waiter thread, or a local writer or reader). False by default: they are queued to the
    /// thread pool. A continuation never runs in another process.
    /// </summary>
    public bool AllowSynchronousContinuations { get; set; }

    /// <summary>
    /// How many times a waiting reader or writer polls (with a processor pause) before it yields, and
    /// then sleeps in the kernel. <see cref="int.MaxValue"/> spins for ever: the lowest latency, one
    /// core busy. 0 sleeps at once.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int SpinCount
    {
        get => _spinCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _spinCount = value;
        }
    }

    /// <summary>How many times a waiter yields its processor after spinning and before it sleeps.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public int YieldCount
    {
        get => _yieldCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _yieldCount = value;
        }
    }

    private ChannelNotifier _notifier;

    internal SharedChannelOptions Clone() => (SharedChannelOptions)MemberwiseClone();

    /// <summary>
    /// Refuses, as the BCL's split of <see cref="BoundedChannelOptions"/> and <see cref="UnboundedChannelOptions"/>
    /// does at compile time, a setting given that the channel being made (<see cref="IsUnbounded"/>, of
    /// records or not) has no use for: an ignored setting would make a channel that silently behaves
    /// otherwise than asked (an unbounded channel "of capacity 5" that takes 100 items).
    /// </summary>
    /// <param name="options">The options given to a factory.</param>
    /// <param name="records">Whether the channel carries records (record and serialized channels).</param>
    /// <exception cref="ArgumentException">A setting given does not apply.</exception>
    internal static void ThrowIfNotApplicable(SharedChannelOptions options, bool records)
    {
        string? problem = options.Problem(records);
        if (problem is not null)
        {
            throw new ArgumentException(problem, nameof(options));
        }
    }

    private string? Problem(bool records)
    {
        string? problem = null;
        if (IsUnbounded && (_given & KindSettings.Capacity) != 0)
        {
            problem = $"Capacity ({_capacity}) was given, but an unbounded channel has no capacity: its queue grows in chunks of ChunkCapacity elements. Leave Capacity unset (new SharedChannelOptions()), or make a bounded channel.";
        }
        else if (IsUnbounded && (_given & KindSettings.FullMode) != 0)
        {
            problem = $"FullMode ({_fullMode}) was given, but an unbounded channel is never full. Leave FullMode unset, or make a bounded channel.";
        }
        else if (!IsUnbounded && (_given & KindSettings.ChunkCapacity) != 0)
        {
            problem = $"ChunkCapacity ({_chunkCapacity}) was given, but a bounded channel has no chunks: it holds Capacity ({_capacity}) items. Leave ChunkCapacity unset, or make an unbounded channel.";
        }
        else if (!records && (_given & KindSettings.MaxRecordSize) != 0)
        {
            problem = $"MaxRecordSize ({_maxRecordSize}) was given, but a channel of unmanaged elements carries no records. Leave MaxRecordSize unset, or make a record or serialized channel.";
        }

        return problem;
    }

    private static void ValidateCapacity(int capacity, string paramName)
    {
        if (capacity < 1 || capacity > MaxCapacity)
        {
            throw new ArgumentOutOfRangeException(paramName, capacity, $"The capacity must be from 1 to {MaxCapacity}.");
        }
    }
}
