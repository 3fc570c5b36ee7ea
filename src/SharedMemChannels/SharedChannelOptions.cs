using System.Threading.Channels;

namespace SharedMemChannels;

/// <summary>
/// How a <see cref="SharedChannel{T}"/> is made: the options of <see cref="BoundedChannelOptions"/>
/// (and <see cref="UnboundedChannelOptions"/>, with <see cref="ChunkCapacity"/>), with their meaning
/// across processes, and how a waiting reader or writer waits.
/// </summary>
/// <remarks>
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

    /// <summary>
    /// Options with the defaults: <see cref="DefaultCapacity"/> items for a bounded channel, chunks of
    /// <see cref="DefaultChunkCapacity"/> for an unbounded one
    /// (<c>SharedChannel.CreateUnbounded&lt;T&gt;(segment, name, new SharedChannelOptions { SingleReader = true })</c>).
    /// </summary>
    public SharedChannelOptions()
        : this(DefaultCapacity)
    {
    }

    /// <summary>Options for a channel of <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">How many items the channel holds, 1 to <see cref="MaxCapacity"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is out of range.</exception>
    public SharedChannelOptions(int capacity)
    {
        ValidateCapacity(capacity, nameof(capacity));
        _capacity = capacity;
    }

    /// <summary>
    /// How many items the channel holds: exactly this many (a capacity of 3 holds 3), any value from 1 to
    /// <see cref="MaxCapacity"/>. A capacity of 0 (the BCL's rendezvous channel) is not supported across
    /// processes. Unbounded channels ignore it (and <see cref="FullMode"/>): see <see cref="ChunkCapacity"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of range.</exception>
    public int Capacity
    {
        get => _capacity;
        set
        {
            ValidateCapacity(value, nameof(value));
            _capacity = value;
        }
    }

    /// <summary>
    /// Elements per chunk of an unbounded channel (<see cref="SharedChannel.CreateUnbounded{T}(SharedSegment, string, SharedChannelOptions)"/>): the
    /// queue takes a chunk of this many elements from the segment's heap each time it grows past the
    /// chunks it has, and gives chunks back as readers pass them. 1 to <see cref="MaxChunkCapacity"/>,
    /// <see cref="DefaultChunkCapacity"/> by default; stored with the channel. Bigger chunks visit the
    /// heap less often; smaller ones give memory back sooner. Bounded channels ignore it.
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
        }
    }

    /// <summary>Whether these options make (or describe) an unbounded channel: set by the unbounded factories and when opening one.</summary>
    internal bool IsUnbounded { get; set; }

    /// <summary>What a write into a full channel does. <see cref="BoundedChannelFullMode.Wait"/> by default.</summary>
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
    /// another value is an <see cref="ArgumentException"/>. Ignored by channels of unmanaged elements.
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
        }
    }

    /// <summary>Whether one process at a time reads (enforced across processes; see the remarks). False by default.</summary>
    public bool SingleReader { get; set; }

    /// <summary>Whether one process at a time writes (enforced across processes; see the remarks). False by default.</summary>
    public bool SingleWriter { get; set; }

    /// <summary>
    /// Whether the channel outlives its users. False by default: a channel is reference counted across
    /// processes (each process that opens it holds a reference until it disposes its channel or dies) and
    /// is removed from its segment, with the items still queued, when the last reference goes, as RaftLib's
    /// channels are. True keeps it, and what it holds, until <see cref="SharedChannel.Remove(SharedSegment, string)"/>
    /// or the segment goes: a writer may then fill it and exit before any reader opens it.
    /// Stored with the channel when it is made.
    /// </summary>
    public bool Persistent { get; set; }

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

    private static void ValidateCapacity(int capacity, string paramName)
    {
        if (capacity < 1 || capacity > MaxCapacity)
        {
            throw new ArgumentOutOfRangeException(paramName, capacity, $"The capacity must be from 1 to {MaxCapacity}.");
        }
    }
}
