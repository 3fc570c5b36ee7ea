namespace SharedMemChannels.Diagnostics;

/// <summary>One slot of a segment's process table: a process attached to the segment, or one that died attached.</summary>
public sealed record ProcessReport
{
    internal ProcessReport()
    {
    }

    /// <summary>The slot's index in the process table; with <see cref="Generation"/>, the owner of the blocks and locks the process holds.</summary>
    public int Slot { get; init; }

    /// <summary>The process id, as seen from the pid namespace the process attached from.</summary>
    public int ProcessId { get; init; }

    /// <summary>How many times the slot has been claimed (15 bits): a reused slot never looks like its previous owner.</summary>
    public int Generation { get; init; }

    /// <summary>
    /// The process's start time in clock ticks after boot (field 22 of <c>/proc/&lt;pid&gt;/stat</c>): with
    /// the pid, the process's identity, so that a reused pid is not mistaken for it. 0 while it attaches.
    /// </summary>
    public ulong StartTime { get; init; }

    /// <summary>When the process attached (UTC), or null when the slot does not say.</summary>
    public DateTimeOffset? AttachTime { get; init; }

    /// <summary>The slot's state.</summary>
    public ProcessSlotState State { get; init; }

    /// <summary>Whether the process still runs, probed when the report was made.</summary>
    public ProcessLiveness Liveness { get; init; }
}
