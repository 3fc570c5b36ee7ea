namespace SharedMemChannels.Platform;

/// <summary>
/// Who a process is, in a form that survives pid reuse: the pid, the process's start time (clock
/// ticks since boot, from <c>/proc/&lt;pid&gt;/stat</c>) and the identity of its pid namespace.
/// </summary>
/// <param name="Pid">The process id in <paramref name="PidNamespace"/>.</param>
/// <param name="StartTime">Start time in clock ticks since boot; 0 when not known yet.</param>
/// <param name="PidNamespace">The inode of the process's pid namespace (<c>/proc/self/ns/pid</c>).</param>
internal readonly record struct ProcessIdentity(int Pid, ulong StartTime, ulong PidNamespace);

/// <summary>What a liveness probe found.</summary>
internal enum Liveness
{
    /// <summary>The process runs (or is stopped): it is not dead.</summary>
    Alive,

    /// <summary>The process is gone, a zombie, or its pid now belongs to another process.</summary>
    Dead,

    /// <summary>The process is in another pid namespace; it is never treated as dead.</summary>
    Unknown,
}

/// <summary>Process identity and liveness, backed by the operating system (never by a lease or heartbeat).</summary>
internal interface IProcessInfo
{
    /// <summary>This process.</summary>
    ProcessIdentity Current { get; }

    /// <summary>Says whether the process <paramref name="identity"/> names is still alive.</summary>
    Liveness Probe(ProcessIdentity identity);
}
