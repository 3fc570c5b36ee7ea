namespace SharedMemChannels.Platform;

/// <summary>Told once that the thread it was registered for has ended.</summary>
internal interface IThreadExitListener
{
    /// <summary>The watched thread has ended. Runs on the watcher's thread; must not throw.</summary>
    void OnThreadExited();
}

/// <summary>
/// Learns that threads of this process have ended, from the kernel, without a garbage collection and
/// without polling: a managed thread leaves no other trace when it ends (its thread statics become
/// garbage, and finalizers run only if and when a collection happens).
/// </summary>
internal interface IThreadExits
{
    /// <summary>
    /// Watches the calling thread: once it has ended, <paramref name="listener"/> is told on a watcher
    /// thread of this process. False when this system cannot watch threads (Linux before 6.9, or no
    /// descriptor left): the caller keeps its other ways of noticing.
    /// </summary>
    bool TryWatchCurrentThread(IThreadExitListener listener);
}
