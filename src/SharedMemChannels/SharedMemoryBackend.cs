namespace SharedMemChannels;

/// <summary>The operating-system facility that backs a <see cref="SharedSegment"/>.</summary>
public enum SharedMemoryBackend
{
    /// <summary>
    /// POSIX shared memory (<c>shm_open</c>, <c>mmap</c>): objects under <c>/dev/shm</c> named
    /// <c>shmc.&lt;name&gt;</c>. The default; segments can grow up to their maximum capacity.
    /// </summary>
    Posix = 0,

    /// <summary>
    /// System V shared memory (<c>shmget</c>, <c>shmat</c>), keyed by a hash of the name. Fixed size:
    /// a System V segment cannot grow, so its maximum capacity must equal its capacity.
    /// </summary>
    SystemV = 1,
}
