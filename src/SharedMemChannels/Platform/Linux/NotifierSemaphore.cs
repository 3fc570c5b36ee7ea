using System.Diagnostics;

namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// A kernel semaphore that wakes sleepers of an event count instead of its futex word (RaftLib's
/// notifier matrix): a POSIX named semaphore (<c>sem_open</c>) or a System V semaphore set of one
/// (<c>semget</c>). Posting is bounded (a semaphore whose value already covers the sleepers is not posted
/// again), so a value never grows without bound however often nobody waits.
/// </summary>
internal abstract class NotifierSemaphore : IDisposable
{
    /// <summary>The most a post raises the value to (System V's SEMVMX is 32767).</summary>
    private const int MaxValue = 1024;

    private int _disposed;
    private int _users;   // posts and waits in progress
    private int _closed;

    /// <summary>A short description for messages: the semaphore's name or id.</summary>
    public abstract string Description { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Makes the value at least <paramref name="sleepers"/> (at most <see cref="MaxValue"/>); nothing once disposed.</summary>
    public void Post(int sleepers)
    {
        if (!Enter())
        {
            return;
        }

        try
        {
            int want = Math.Clamp(sleepers, 1, MaxValue);
            for (int i = 0; i < want; i++)
            {
                if (Value() >= want || !PostOne())
                {
                    return;
                }
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Takes one unit, sleeping at most <paramref name="timeout"/> (null: no limit); false on timeout. A
    /// disposed semaphore returns true at once (a spurious wake: callers re-check their condition).
    /// </summary>
    public bool Wait(TimeSpan? timeout)
    {
        if (!Enter())
        {
            return true;
        }

        try
        {
            return WaitCore(timeout);
        }
        finally
        {
            Exit();
        }
    }

    protected abstract bool WaitCore(TimeSpan? timeout);

    protected abstract int Value();

    protected abstract bool PostOne();

    protected abstract void Close();

    /// <summary>
    /// Closes the semaphore, or, while a post or wait is in progress on another thread, marks it so that
    /// the last of them closes it: closing under a sleeping thread would free what it sleeps on.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && Volatile.Read(ref _users) == 0)
        {
            CloseOnce();
        }
    }

    private bool Enter()
    {
        Interlocked.Increment(ref _users);
        if (IsDisposed)
        {
            Exit();
            return false;
        }

        return true;
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref _users) == 0 && IsDisposed)
        {
            CloseOnce();
        }
    }

    private void CloseOnce()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Close();
        }
    }
}

/// <summary>A POSIX named semaphore, <c>/dev/shm/sem.NAME</c>.</summary>
internal sealed class PosixNotifierSemaphore : NotifierSemaphore
{
    private readonly nint _semaphore;

    private PosixNotifierSemaphore(string name, nint semaphore)
    {
        Name = name;
        _semaphore = semaphore;
    }

    public string Name { get; }

    public override string Description => $"POSIX semaphore '{Name}'";

    /// <summary>Creates the semaphore (it must not exist), owner-only, value 0.</summary>
    public static PosixNotifierSemaphore Create(string name)
    {
        nint s = LibC.SemOpen(name, LibC.O_CREAT | LibC.O_EXCL, 0x180 /* 0600 */, 0);
        if (s == 0)
        {
            throw Errno.LastError("sem_open", name);
        }

        return new PosixNotifierSemaphore(name, s);
    }

    /// <summary>Opens the existing semaphore, refusing one that is not a regular file of this user's.</summary>
    public static PosixNotifierSemaphore Open(string name)
    {
        string path = "/dev/shm/sem." + name.TrimStart('/');
        if (LibC.Statx(LibC.AT_FDCWD, path, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_BASIC_STATS, out LibC.StatxBuffer stat) == 0)
        {
            if ((stat.Mode & LibC.S_IFMT) != LibC.S_IFREG || stat.Uid != LibC.GetEuid())
            {
                throw new UnauthorizedAccessException($"POSIX semaphore '{name}' is not this user's (uid {stat.Uid}) or not a regular file: refused.");
            }
        }

        nint s = LibC.SemOpen(name, 0, 0, 0);
        if (s == 0)
        {
            throw Errno.LastError("sem_open", name);
        }

        return new PosixNotifierSemaphore(name, s);
    }

    /// <summary>Removes the name; false when there was none.</summary>
    public static bool Unlink(string name) => LibC.SemUnlink(name) == 0;

    protected override bool WaitCore(TimeSpan? timeout)
    {
        // No limit: hour-long waits in a loop keep one entry point.
        bool unlimited = timeout is null;
        long deadlineTicks = Stopwatch.GetTimestamp() + ToStopwatch(timeout ?? TimeSpan.FromHours(1));
        while (true)
        {
            if (LibC.SemClockWait(_semaphore, LibC.CLOCK_MONOTONIC, Monotonic(deadlineTicks)) == 0)
            {
                return true;
            }

            int errno = Errno.Last;
            if (errno == Errno.ETIMEDOUT)
            {
                if (unlimited)
                {
                    deadlineTicks = Stopwatch.GetTimestamp() + ToStopwatch(TimeSpan.FromHours(1));
                    continue;
                }

                return false;
            }

            if (errno != Errno.EINTR)
            {
                throw Errno.ToException(errno, "sem_clockwait", Name);
            }
        }
    }

    private static long ToStopwatch(TimeSpan span) => (long)(span.Ticks * ((double)Stopwatch.Frequency / TimeSpan.TicksPerSecond));

    /// <summary>A Stopwatch timestamp as CLOCK_MONOTONIC time (Stopwatch reads that clock on Linux).</summary>
    private static LibC.Timespec Monotonic(long timestamp)
    {
        long ns = (long)(timestamp * (1_000_000_000.0 / Stopwatch.Frequency));
        return new LibC.Timespec { Seconds = ns / 1_000_000_000L, Nanoseconds = ns % 1_000_000_000L };
    }

    protected override int Value() => LibC.SemGetValue(_semaphore, out int value) == 0 ? value : 0;

    protected override bool PostOne() => LibC.SemPost(_semaphore) == 0;

    protected override void Close() => LibC.SemClose(_semaphore);
}

/// <summary>A System V semaphore set of one semaphore, found by its key.</summary>
internal sealed class SystemVNotifierSemaphore : NotifierSemaphore
{
    private readonly int _id;

    private SystemVNotifierSemaphore(int key, int id)
    {
        Key = key;
        _id = id;
    }

    public int Key { get; }

    public override string Description => $"System V semaphore 0x{Key:x8}";

    /// <summary>Creates the set (the key must be free), owner-only, value 0; null when the key is taken.</summary>
    public static SystemVNotifierSemaphore? TryCreate(int key)
    {
        int id = LibC.SemGet(key, 1, LibC.IPC_CREAT | LibC.IPC_EXCL | 0x180);
        if (id < 0)
        {
            int errno = Errno.Last;
            return errno == Errno.EEXIST ? null : throw Errno.ToException(errno, "semget", $"0x{key:x8}");
        }

        return new SystemVNotifierSemaphore(key, id);
    }

    /// <summary>Opens the set of <paramref name="key"/>, refusing one that is not this user's.</summary>
    public static SystemVNotifierSemaphore Open(int key)
    {
        int id = LibC.SemGet(key, 1, 0);
        if (id < 0)
        {
            throw Errno.LastError("semget", $"0x{key:x8}");
        }

        if (LibC.SemCtlStat(id, 0, LibC.IPC_STAT, out LibC.SemIdDs stat) != 0)
        {
            throw Errno.LastError("semctl(IPC_STAT)", $"0x{key:x8}");
        }

        if (stat.Uid != LibC.GetEuid() || stat.CreatorUid != LibC.GetEuid())
        {
            throw new UnauthorizedAccessException($"System V semaphore 0x{key:x8} belongs to uid {stat.Uid} (made by uid {stat.CreatorUid}): refused.");
        }

        return new SystemVNotifierSemaphore(key, id);
    }

    /// <summary>Removes the set of <paramref name="key"/>; false when there was none.</summary>
    public static bool Remove(int key)
    {
        int id = LibC.SemGet(key, 1, 0);
        return id >= 0 && LibC.SemCtl(id, 0, LibC.IPC_RMID) == 0;
    }

    protected override bool WaitCore(TimeSpan? timeout)
    {
        long deadline = timeout is { } t ? Environment.TickCount64 + (long)Math.Ceiling(t.TotalMilliseconds) : long.MaxValue;
        while (true)
        {
            var op = new LibC.SemBuf { Number = 0, Operation = -1, Flags = 0 };
            long left = deadline == long.MaxValue ? -1 : Math.Max(0, deadline - Environment.TickCount64) * TimeSpan.TicksPerMillisecond;
            if (LibC.SemTimedOp(_id, ref op, left) == 0)
            {
                return true;
            }

            int errno = Errno.Last;
            if (errno == Errno.EAGAIN)
            {
                return false;
            }

            if (errno != Errno.EINTR)
            {
                throw Errno.ToException(errno, "semtimedop", Description);
            }
        }
    }

    protected override int Value()
    {
        int value = LibC.SemCtl(_id, 0, LibC.GETVAL);
        return value < 0 ? 0 : value;
    }

    protected override bool PostOne()
    {
        var op = new LibC.SemBuf { Number = 0, Operation = 1, Flags = 0 };
        return LibC.SemTimedOp(_id, ref op, -1) == 0;
    }

    protected override void Close()
    {
        // A System V set has nothing to close per process.
    }
}
