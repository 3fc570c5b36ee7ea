using System.Runtime.InteropServices;

namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// The C library and raw system calls this library uses on Linux. Nothing outside <c>Platform/</c>
/// calls into native code; every entry point sets <c>errno</c> for <see cref="Errno"/> to map.
/// Constants are the asm-generic values, identical on x86-64 and arm64 unless noted.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    public const int O_RDONLY = 0;
    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800; // 04000 on x86_64 and arm64: an open of a FIFO never waits for a writer

    public const int PROT_NONE = 0;
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;

    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int LOCK_UN = 8;

    public const int IPC_CREAT = 0x200;   // 01000
    public const int IPC_EXCL = 0x400;    // 02000
    public const int IPC_RMID = 0;
    public const int IPC_STAT = 2;
    public const int SHM_RDONLY = 0x1000; // 010000
    public const int SHM_DEST = 0x200;    // 01000, a bit of shm_perm.mode

    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int S_IFMT = 0xF000;   // the file-type bits of st_mode
    public const int S_IFREG = 0x8000;  // a regular file
    public const int S_IFIFO = 0x1000;  // a FIFO (named pipe)
    public const int S_IFCHR = 0x2000;  // a character device
    public const int S_IFDIR = 0x4000;  // a directory
    public const int S_IFBLK = 0x6000;  // a block device
    public const int S_IFLNK = 0xA000;  // a symbolic link
    public const int S_IFSOCK = 0xC000; // a socket
    public const uint STATX_BASIC_STATS = 0x7ff;

    public const int CLOCK_MONOTONIC = 1;

    [LibraryImport(Lib, EntryPoint = "shm_open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ShmOpen(string name, int oflag, uint mode);

    [LibraryImport(Lib, EntryPoint = "shm_unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ShmUnlink(string name);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int FTruncate(int fd, long length);

    /// <summary>Linux <c>fallocate(2)</c>; mode 0 allocates the range and extends the size.</summary>
    [LibraryImport(Lib, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int FAllocate(int fd, int mode, long offset, long length);

    [LibraryImport(Lib, EntryPoint = "fchmod", SetLastError = true)]
    public static partial int FChmod(int fd, uint mode);

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    public const int MADV_POPULATE_WRITE = 23;

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "shmget", SetLastError = true)]
    public static partial int ShmGet(int key, nuint size, int flags);

    [LibraryImport(Lib, EntryPoint = "shmat", SetLastError = true)]
    public static partial nint ShmAt(int id, nint address, int flags);

    [LibraryImport(Lib, EntryPoint = "shmdt", SetLastError = true)]
    public static partial int ShmDt(nint address);

    [LibraryImport(Lib, EntryPoint = "shmctl", SetLastError = true)]
    public static partial int ShmCtl(int id, int command, out ShmIdDs buffer);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    /// <summary>
    /// <c>syscall(2)</c> with six integer arguments. The C function is variadic; on x86-64 and
    /// arm64 Linux integer variadic arguments travel in the same registers as fixed ones, and
    /// glibc's <c>syscall</c> reads no vector registers, so the fixed signature is exact.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    [LibraryImport(Lib, EntryPoint = "clock_gettime", SetLastError = true)]
    public static partial int ClockGetTime(int clock, Timespec* time);

    // ---------------------------------------------------------------- thread exits (pidfd, poll, eventfd)

    /// <summary><c>pidfd_open(2)</c>'s flag (Linux 6.9+) for a descriptor of one thread, readable when that thread has ended.</summary>
    public const int PIDFD_THREAD = O_EXCL;
    public const short POLLIN = 0x1;
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = O_CLOEXEC;
    private const long SysPidfdOpen = 434; // the same number on x86-64 and arm64 (kernel 5.3+)

    /// <summary>The calling thread's kernel id (glibc 2.30+, musl 1.2.2+).</summary>
    [LibraryImport(Lib, EntryPoint = "gettid")]
    public static partial int GetTid();

    /// <summary><c>pidfd_open(2)</c>: a descriptor of the process (or, with <see cref="PIDFD_THREAD"/>, the thread) <paramref name="pid"/>; -1 and errno on failure.</summary>
    public static int PidfdOpen(int pid, int flags) => (int)Syscall(SysPidfdOpen, pid, flags, 0, 0, 0, 0);

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initialValue, int flags);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    /// <summary><c>poll(2)</c> over <paramref name="fds"/>; a negative timeout waits without limit.</summary>
    public static int Poll(Span<PollFd> fds, int timeoutMilliseconds)
    {
        fixed (PollFd* p = fds)
        {
            return Poll(p, (nuint)fds.Length, timeoutMilliseconds);
        }
    }

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, void* buffer, nuint count);

    /// <summary>Adds <paramref name="value"/> to an eventfd's counter (it becomes readable).</summary>
    public static bool EventFdWrite(int fd, ulong value) => Write(fd, &value, sizeof(ulong)) == sizeof(ulong);

    /// <summary>Reads and clears an eventfd's counter; false when it was zero (non-blocking descriptor).</summary>
    public static bool EventFdRead(int fd)
    {
        ulong value;
        return Read(fd, &value, sizeof(ulong)) == sizeof(ulong);
    }

    /// <summary><c>struct pollfd</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    // ---------------------------------------------------------------- semaphores (notifiers)

    /// <summary>
    /// <c>sem_open</c> with its two optional arguments. The C function is variadic; as for
    /// <see cref="Syscall"/>, on x86-64 and arm64 integer variadic arguments travel in the registers of
    /// fixed ones, so the fixed signature is exact. Returns <c>SEM_FAILED</c> (0) on failure.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "sem_open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint SemOpen(string name, int oflag, uint mode, uint value);

    [LibraryImport(Lib, EntryPoint = "sem_close", SetLastError = true)]
    public static partial int SemClose(nint semaphore);

    [LibraryImport(Lib, EntryPoint = "sem_unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SemUnlink(string name);

    [LibraryImport(Lib, EntryPoint = "sem_post", SetLastError = true)]
    public static partial int SemPost(nint semaphore);

    [LibraryImport(Lib, EntryPoint = "sem_getvalue", SetLastError = true)]
    public static partial int SemGetValue(nint semaphore, out int value);

    /// <summary><c>sem_clockwait</c> (glibc 2.30+): waits until an absolute time on <paramref name="clock"/>.</summary>
    [LibraryImport(Lib, EntryPoint = "sem_clockwait", SetLastError = true)]
    public static partial int SemClockWait(nint semaphore, int clock, in Timespec absoluteTime);

    public const int GETVAL = 12;
    public const int SETVAL = 16;

    [LibraryImport(Lib, EntryPoint = "semget", SetLastError = true)]
    public static partial int SemGet(int key, int count, int flags);

    /// <summary><c>semtimedop</c> with a relative timeout (null: none).</summary>
    [LibraryImport(Lib, EntryPoint = "semtimedop", SetLastError = true)]
    public static partial int SemTimedOp(int id, ref SemBuf operation, nuint count, Timespec* timeout);

    /// <summary>One <c>semtimedop</c> operation with a relative timeout in ticks (negative: none).</summary>
    public static int SemTimedOp(int id, ref SemBuf operation, long timeoutTicks)
    {
        if (timeoutTicks < 0)
        {
            return SemTimedOp(id, ref operation, 1, null);
        }

        Timespec timeout = Timespec.FromTicks(timeoutTicks);
        return SemTimedOp(id, ref operation, 1, &timeout);
    }

    /// <summary><c>semctl</c> for the commands without a fourth argument (IPC_RMID, GETVAL); variadic, see <see cref="SemOpen"/>.</summary>
    [LibraryImport(Lib, EntryPoint = "semctl", SetLastError = true)]
    public static partial int SemCtl(int id, int number, int command);

    /// <summary><c>semctl(IPC_STAT)</c>: the fourth argument is a pointer to the <c>semid_ds</c>.</summary>
    [LibraryImport(Lib, EntryPoint = "semctl", SetLastError = true)]
    public static partial int SemCtlStat(int id, int number, int command, out SemIdDs buffer);

    /// <summary><c>struct sembuf</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SemBuf
    {
        public ushort Number;
        public short Operation;
        public short Flags;
    }

    /// <summary><c>struct semid_ds</c> on 64-bit Linux; only the owner fields are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    public struct SemIdDs
    {
        [FieldOffset(0)] public int Key;
        [FieldOffset(4)] public uint Uid;
        [FieldOffset(12)] public uint CreatorUid;
        [FieldOffset(20)] public ushort Mode;
    }

    /// <summary><c>struct timespec</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;

        public static Timespec FromTicks(long ticks)
        {
            if (ticks < 0)
            {
                ticks = 0;
            }

            return new Timespec
            {
                Seconds = ticks / TimeSpan.TicksPerSecond,
                Nanoseconds = ticks % TimeSpan.TicksPerSecond * 100,
            };
        }
    }

    /// <summary><c>struct statx</c>: the same 256-byte layout on every architecture.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
    }

    /// <summary>
    /// <c>struct shmid_ds</c> on 64-bit Linux (x86-64 and arm64 agree on these offsets; checked
    /// against the C headers on x86-64). Only the fields read here are named.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    public struct ShmIdDs
    {
        [FieldOffset(0)] public int Key;
        [FieldOffset(4)] public uint Uid;
        [FieldOffset(12)] public uint CreatorUid;
        [FieldOffset(20)] public ushort Mode;
        [FieldOffset(48)] public ulong SegmentSize;
        [FieldOffset(72)] public long ChangeTime;
        [FieldOffset(80)] public int CreatorPid;
        [FieldOffset(84)] public int LastPid;
        [FieldOffset(88)] public ulong AttachCount;
    }

    /// <summary>Copies <paramref name="destination"/>.Length bytes from native memory at <paramref name="address"/>.</summary>
    public static void CopyFrom(nint address, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)address, destination.Length).CopyTo(destination);
}
