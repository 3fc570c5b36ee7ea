namespace SharedMemChannels.Diagnostics;

/// <summary>
/// What <see cref="SegmentDiagnostics"/> read from one segment, without attaching to it: the backing
/// object, the header, the process table, the heap and the named objects. A snapshot: the segment may
/// have changed since.
/// </summary>
/// <remarks>
/// Header values (<see cref="LayoutVersion"/> to <see cref="CreationTime"/>) are 0 or null when the
/// header could not be read. When <see cref="Status"/> is <see cref="SegmentStatus.Initializing"/> or
/// <see cref="SegmentStatus.Damaged"/> they are what the header says, which may be partly written or wrong.
/// </remarks>
public sealed record SegmentReport
{
    internal SegmentReport(string name, SharedMemoryBackend backend, string location)
    {
        Name = name;
        Backend = backend;
        Location = location;
    }

    /// <summary>The segment's name.</summary>
    public string Name { get; init; }

    /// <summary>The facility the segment lives in.</summary>
    public SharedMemoryBackend Backend { get; init; }

    /// <summary>Where the backing object lives: a path under <c>/dev/shm</c>, or a System V key.</summary>
    public string Location { get; init; }

    /// <summary>What the object is: a ready segment, one being initialized, a damaged one, something else.</summary>
    public SegmentStatus Status { get; init; }

    /// <summary>Why the segment is not <see cref="SegmentStatus.Ready"/>, in one sentence; null when it is.</summary>
    public string? Problem { get; init; }

    /// <summary>Whether the segment is damaged (<see cref="Status"/> is <see cref="SegmentStatus.Damaged"/>); <see cref="Problem"/> says why.</summary>
    public bool IsDamaged => Status == SegmentStatus.Damaged;

    /// <summary>
    /// The size of the backing object as the kernel reports it. Smaller than <see cref="Capacity"/> means
    /// the object was truncated behind the library's back: processes attached to it die of SIGBUS when
    /// they touch the missing part (an operating-system limit), and the report is <see cref="SegmentStatus.Damaged"/>.
    /// </summary>
    public long ObjectSize { get; init; }

    /// <summary>The user id that owns the backing object.</summary>
    public uint OwnerUserId { get; init; }

    /// <summary>The layout version written in the header, or 0 when there is none.</summary>
    public int LayoutVersion { get; init; }

    /// <summary>Bytes of the segment in use (it grows up to <see cref="MaxCapacity"/>), as the header publishes it.</summary>
    public long Capacity { get; init; }

    /// <summary>The most the segment may grow to.</summary>
    public long MaxCapacity { get; init; }

    /// <summary>The capacity the segment was created with.</summary>
    public long InitialCapacity { get; init; }

    /// <summary>The access mode the segment was created with (owner-only by default).</summary>
    public UnixFileMode Mode { get; init; }

    /// <summary>Whether the segment is removed when the last live process detaches.</summary>
    public bool RemoveOnLastDetach { get; init; }

    /// <summary>The process id of the segment's creator, as seen from its pid namespace.</summary>
    public int CreatorProcessId { get; init; }

    /// <summary>When the segment was created (UTC), or null when the header was not read.</summary>
    public DateTimeOffset? CreationTime { get; init; }

    /// <summary>The process-table slots in use: attached processes, and dead ones not yet reclaimed.</summary>
    public IReadOnlyList<ProcessReport> Processes { get; init; } = [];

    /// <summary>How many of <see cref="Processes"/> are not known to be dead.</summary>
    public int LiveProcessCount => Processes.Count(p => p.Liveness != ProcessLiveness.Dead);

    /// <summary>The heap, from one walk over its blocks; null when it was not read (see <see cref="Problem"/>).</summary>
    public HeapStatistics? Heap { get; init; }

    /// <summary>The named objects of the segment's directory.</summary>
    public IReadOnlyList<NamedObjectInfo> NamedObjects { get; init; } = [];

    /// <summary>The channels the segment holds (their control blocks are among <see cref="NamedObjects"/>).</summary>
    public IReadOnlyList<ChannelReport> Channels { get; init; } = [];

    /// <summary>The named synchronization objects the segment holds (mutexes, events, semaphores).</summary>
    public IReadOnlyList<SyncObjectReport> SyncObjects { get; init; } = [];

    /// <summary>The publish/subscribe topics the segment holds.</summary>
    public IReadOnlyList<TopicReport> Topics { get; init; } = [];
}
