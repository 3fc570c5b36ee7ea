namespace SharedMemChannels.Diagnostics;

/// <summary>A named synchronization object (<see cref="SharedMutex"/>, <see cref="SharedEvent"/>, <see cref="SharedSemaphore"/>) as inspection reads it.</summary>
public sealed record SyncObjectReport
{
    /// <summary>The object's name (as passed to its Create).</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>"mutex", "event" or "semaphore" ("damaged" when the control block is not one).</summary>
    public string Kind { get; init; } = string.Empty;

    /// <summary>A mutex's holder: its process id (0 when free, or when the holder's slot was reused).</summary>
    public int HolderProcessId { get; init; }

    /// <summary>Whether a mutex is held.</summary>
    public bool IsHeld { get; init; }

    /// <summary>Whether a held mutex's holder is alive (a dead one's mutex is abandoned).</summary>
    public ProcessLiveness HolderLiveness { get; init; }

    /// <summary>An event's state.</summary>
    public bool IsSet { get; init; }

    /// <summary>Whether an event resets itself when a wait passes.</summary>
    public bool AutoReset { get; init; }

    /// <summary>A semaphore's available units.</summary>
    public int Count { get; init; }

    /// <summary>A semaphore's maximum.</summary>
    public int MaximumCount { get; init; }

    /// <summary>How many times a mutex was taken.</summary>
    public int Acquisitions { get; init; }

    /// <summary>Waiters announced on the object now (any process).</summary>
    public int Waiters { get; init; }
}
