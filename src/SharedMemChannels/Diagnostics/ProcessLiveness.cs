namespace SharedMemChannels.Diagnostics;

/// <summary>Whether the process recorded in a process-table slot still runs, as the operating system says.</summary>
public enum ProcessLiveness
{
    /// <summary>The process runs (or is stopped): it is not dead.</summary>
    Alive,

    /// <summary>The process is gone, a zombie, or its pid now belongs to another process; its slot awaits reclaiming.</summary>
    Dead,

    /// <summary>The process lives in another pid namespace, where this process cannot see it; it is never treated as dead.</summary>
    Unknown,
}
