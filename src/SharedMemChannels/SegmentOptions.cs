namespace SharedMemChannels;

/// <summary>How a <see cref="SharedSegment"/> is created and opened.</summary>
/// <remarks>
/// Only <see cref="Backend"/>, <see cref="OpenTimeout"/> and <see cref="AllowForeignOwner"/> matter when
/// opening an existing segment: the other values are fixed by its creator and read from its header.
/// </remarks>
public sealed class SegmentOptions
{
    /// <summary>The smallest capacity a segment can have (64 KiB).</summary>
    public const long MinCapacity = 64 * 1024;

    /// <summary>The largest capacity this version supports (1 TiB).</summary>
    public const long MaxSupportedCapacity = 1L << 40;

    /// <summary>The default initial capacity (1 MiB).</summary>
    public const long DefaultCapacity = 1024 * 1024;

    /// <summary>The default growth limit of a POSIX segment (1 GiB, or the capacity when that is larger).</summary>
    public const long DefaultMaxCapacity = 1L << 30;

    private long _capacity = DefaultCapacity;
    private long? _maxCapacity;
    private UnixFileMode _mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private TimeSpan _openTimeout = TimeSpan.FromSeconds(10);
    private SharedMemoryBackend _backend = SharedMemoryBackend.Posix;

    /// <summary>
    /// The initial size in bytes, rounded up to whole pages; at least <see cref="MinCapacity"/>.
    /// The pages are reserved when the segment is made, so a full system fails then, with an exception.
    /// </summary>
    public long Capacity
    {
        get => _capacity;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinCapacity);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxSupportedCapacity);
            _capacity = value;
        }
    }

    /// <summary>
    /// How far the segment may grow, in bytes. Each process reserves this much address space once (no
    /// memory), so that growth never moves existing data. Defaults to <see cref="DefaultMaxCapacity"/>
    /// (or <see cref="Capacity"/> if larger) for POSIX, and to <see cref="Capacity"/> for System V.
    /// </summary>
    public long MaxCapacity
    {
        get => _maxCapacity ?? (_backend == SharedMemoryBackend.SystemV ? _capacity : Math.Max(_capacity, DefaultMaxCapacity));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinCapacity);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxSupportedCapacity);
            _maxCapacity = value;
        }
    }

    /// <summary>The operating-system facility behind the segment. <see cref="SharedMemoryBackend.Posix"/> by default.</summary>
    public SharedMemoryBackend Backend
    {
        get => _backend;
        set
        {
            if (!Enum.IsDefined(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown shared-memory backend.");
            }

            _backend = value;
        }
    }

    /// <summary>
    /// The Unix permissions of the backing object. Owner read and write (0600) by default, so that other
    /// users cannot open the segment; add group bits to share it with a group. Applied exactly (the
    /// process's umask does not narrow it). Only the permission bits (0777) are allowed.
    /// </summary>
    public UnixFileMode UnixFileMode
    {
        get => _mode;
        set
        {
            if (((int)value & ~0x1FF) != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Only permission bits (0777) are allowed.");
            }

            if ((value & UnixFileMode.UserRead) == 0 || (value & UnixFileMode.UserWrite) == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The owner must be able to read and write the segment.");
            }

            _mode = value;
        }
    }

    /// <summary>
    /// Whether the name is removed when the last live process detaches. Processes that died without
    /// detaching do not count, so a crashed process never keeps such a segment alive; and a segment of
    /// this kind found with no live process attached is replaced by <see cref="SharedSegment.Create(string, SegmentOptions)"/>
    /// and <see cref="SharedSegment.OpenOrCreate(string, SegmentOptions)"/>. False by default: segments persist until removed.
    /// </summary>
    public bool RemoveOnLastDetach { get; set; }

    /// <summary>
    /// Whether opening may attach to a segment whose backing object belongs to another user (its owner,
    /// and for System V also its creator, is not this process's effective uid). False by default: every
    /// entry point (<see cref="SharedSegment.Open(string, SegmentOptions)"/>,
    /// <see cref="SharedSegment.OpenOrCreate(string, SegmentOptions)"/>, and
    /// <see cref="SharedSegment.Create(string, SegmentOptions)"/> when it finds the name taken) then throws
    /// <see cref="UnauthorizedAccessException"/> for such an object, because anyone can create a name in
    /// <c>/dev/shm</c> first, with permissions that let its owner read and change everything this process
    /// puts in it. Set it to share segments between users on purpose (the creator grants access with
    /// <see cref="UnixFileMode"/>). Even then, another user's object is never removed as a leftover.
    /// </summary>
    public bool AllowForeignOwner { get; set; }

    /// <summary>
    /// How long an opener waits for a segment that another process is still initializing, or for a
    /// leftover of a crashed creator to be cleaned up, before a <see cref="TimeoutException"/>. 10 s by default.
    /// </summary>
    public TimeSpan OpenTimeout
    {
        get => _openTimeout;
        set
        {
            if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The timeout must be zero or more, or Timeout.InfiniteTimeSpan.");
            }

            _openTimeout = value;
        }
    }

    /// <summary>Checks the options as a whole, for creating a segment.</summary>
    internal void ValidateForCreate()
    {
        if (MaxCapacity < Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxCapacity), MaxCapacity, $"MaxCapacity must be at least Capacity ({Capacity}).");
        }

        if (Backend == SharedMemoryBackend.SystemV && RoundToPage(MaxCapacity) != RoundToPage(Capacity))
        {
            throw new ArgumentException(
                $"A System V segment cannot grow: MaxCapacity ({MaxCapacity}) must equal Capacity ({Capacity}). Use the POSIX backend for a growing segment.",
                nameof(MaxCapacity));
        }
    }

    internal static long RoundToPage(long value) => (value + Environment.SystemPageSize - 1) & ~((long)Environment.SystemPageSize - 1);

    internal SegmentOptions Clone() => (SegmentOptions)MemberwiseClone();
}
