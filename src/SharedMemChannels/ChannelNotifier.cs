namespace SharedMemChannels;

/// <summary>
/// What a channel's sleeping readers and writers are woken with (RaftLib's notifier matrix). The futex
/// words in the segment are the default and the fastest; the semaphores are for interoperating with
/// systems that expect them, and for comparison. The choice is stored with the channel.
/// </summary>
public enum ChannelNotifier
{
    /// <summary>Futex words in the segment; asynchronous waits of a whole process share one waiter thread.</summary>
    Futex = 0,

    /// <summary>
    /// Two POSIX named semaphores (<c>sem_open</c>, <c>/dev/shm/sem.shmc.n.*</c>), made with the channel and
    /// removed with it; a process's asynchronous waits on each use one thread while any is pending.
    /// </summary>
    PosixSemaphore = 1,

    /// <summary>
    /// Two System V semaphores (<c>semget</c>), made with the channel and removed with it; a process's
    /// asynchronous waits on each use one thread while any is pending.
    /// </summary>
    SystemVSemaphore = 2,
}
