using Microsoft.Win32.SafeHandles;

namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// POSIX shared memory: <c>shm_open</c> objects, which glibc keeps as files of the tmpfs at
/// <c>/dev/shm</c>. Attachment is an advisory <c>flock</c> on each process's own descriptor: shared
/// while attached, exclusive while the creator initializes and while a process removes the name. The
/// kernel drops it when the process dies, which is how survivors tell a dead creator from a slow one.
/// </summary>
internal sealed class PosixSharedMemoryProvider : SharedMemoryProvider
{
    /// <summary>Where glibc's <c>shm_open</c> keeps its objects.</summary>
    public const string Directory = "/dev/shm";

    public override SharedMemoryBackend Kind => SharedMemoryBackend.Posix;

    public override SharedMemoryObject? TryCreate(string name, long size, UnixFileMode mode)
    {
        string shmName = ShmName(name);
        int fd = LibC.ShmOpen(shmName, LibC.O_RDWR | LibC.O_CREAT | LibC.O_EXCL | LibC.O_CLOEXEC, (uint)mode);
        if (fd < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.EEXIST)
            {
                return null;
            }

            throw Errno.ToException(errno, "shm_open(O_CREAT|O_EXCL)", Describe(name));
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        PosixSharedMemory? created = null;
        try
        {
            // Exclusive until the header says ready: an opener that can take a shared lock while the
            // state is still "initializing" knows this process died.
            PosixSharedMemory.FlockOrThrow(handle, LibC.LOCK_EX, name);
            // shm_open applies the umask; the segment gets exactly the mode asked for.
            if (LibC.FChmod(fd, (uint)mode) != 0)
            {
                throw Errno.LastError("fchmod", Describe(name));
            }

            created = new PosixSharedMemory(name, shmName, handle, lockState: PosixSharedMemory.LockExclusive);
            return created;
        }
        catch
        {
            LibC.ShmUnlink(shmName);
            if (created is null)
            {
                handle.Dispose();
            }
            else
            {
                created.Dispose();
            }

            throw;
        }
    }

    public override SharedMemoryObject? TryOpen(string name, bool writable)
    {
        string shmName = ShmName(name);
        // O_NONBLOCK: anyone can make a FIFO of the name in the world-writable /dev/shm, and a read-only
        // open of a FIFO waits for a writer forever (an inspector, a monitor would hang). With the flag the
        // open returns at once and the type check below refuses it; on a regular file it changes nothing.
        int fd = LibC.ShmOpen(shmName, (writable ? LibC.O_RDWR : LibC.O_RDONLY) | LibC.O_CLOEXEC | LibC.O_NONBLOCK, 0);
        if (fd < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.ENOENT)
            {
                return null;
            }

            // glibc opens with O_NOFOLLOW: a symbolic link fails with ELOOP and is never followed; a
            // directory fails with EINVAL (glibc's word for EISDIR here); a socket with ENXIO. Whatever the
            // error, an entry of the name that is not a regular file is reported as such.
            if (KindOf(PathOf(name)) == EntryKind.Other)
            {
                throw NotAnObject(name);
            }

            throw Errno.ToException(errno, "shm_open", Describe(name));
        }

        var opened = new PosixSharedMemory(name, shmName, new SafeFileHandle(fd, ownsHandle: true), lockState: 0) { Writable = writable };
        if (!opened.IsRegularFile)
        {
            // Checked on the descriptor, not the name (which may have changed since): a FIFO, a device
            // node, a directory: nothing this library made, nothing to map.
            opened.Dispose();
            throw NotAnObject(name);
        }

        return opened;
    }

    public override bool Exists(string name) => KindOf(PathOf(name)) == EntryKind.Regular;

    public override bool Remove(string name)
    {
        // Only what Exists reports: a symbolic link or a directory of the name is not ours to remove.
        if (KindOf(PathOf(name)) != EntryKind.Regular)
        {
            return false;
        }

        if (LibC.ShmUnlink(ShmName(name)) == 0)
        {
            return true;
        }

        int errno = Errno.Last;
        if (errno == Errno.ENOENT)
        {
            return false;
        }

        throw Errno.ToException(errno, "shm_unlink", Describe(name));
    }

    public override IReadOnlyList<string> List()
    {
        var names = new List<string>();
        if (!System.IO.Directory.Exists(Directory))
        {
            return names;
        }

        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, ObjectPrefix + "*"))
        {
            string name = Path.GetFileName(path)[ObjectPrefix.Length..];
            if (SharedName.IsValid(name) && KindOf(path) == EntryKind.Regular)
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    public override string Describe(string name) => PathOf(name);

    /// <summary>The size and the free bytes of the tmpfs at <c>/dev/shm</c> (what every POSIX segment takes its pages from), or null when it cannot be read.</summary>
    internal static (long Total, long Free)? FileSystemSpace()
    {
        try
        {
            var drive = new DriveInfo(Directory);
            return (drive.TotalSize, drive.AvailableFreeSpace);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    internal static string ShmName(string name) => "/" + ObjectPrefix + name;

    /// <summary>What <paramref name="path"/> itself is (<c>lstat</c>: a symbolic link is not followed).</summary>
    internal static EntryKind KindOf(string path)
    {
                if (LibC.Statx(LibC.AT_FDCWD, path, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_BASIC_STATS, out LibC.StatxBuffer stat) != 0)
        {
            int errno = Errno.Last;
            if (errno is Errno.ENOENT)
            {
                return EntryKind.None;
            }

            throw Errno.ToException(errno, "statx", path);
        }

        return (stat.Mode & LibC.S_IFMT) == LibC.S_IFREG ? EntryKind.Regular : EntryKind.Other;
    }

    private static InvalidSegmentException NotAnObject(string name) =>
        new(name, $"{PathOf(name)} is not a shared-memory object ({What(PathOf(name))}); it is left alone.");

    /// <summary>What a non-regular entry is, in words, for a message (<c>lstat</c>: a link is a link).</summary>
    private static string What(string path)
    {
        if (LibC.Statx(LibC.AT_FDCWD, path, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_BASIC_STATS, out LibC.StatxBuffer stat) != 0)
        {
            return "it changed while it was looked at";
        }

        return (stat.Mode & LibC.S_IFMT) switch
        {
            LibC.S_IFIFO => "a FIFO",
            LibC.S_IFSOCK => "a socket",
            LibC.S_IFDIR => "a directory",
            LibC.S_IFLNK => "a symbolic link",
            LibC.S_IFCHR or LibC.S_IFBLK => "a device node",
            LibC.S_IFREG => "it changed while it was looked at",
            _ => "a special file",
        };
    }

    internal static string PathOf(string name) => Directory + "/" + ObjectPrefix + name;
}

/// <summary>What a directory entry under <c>/dev/shm</c> is.</summary>
internal enum EntryKind
{
    /// <summary>Nothing of that name.</summary>
    None,

    /// <summary>A regular file: a shared-memory object.</summary>
    Regular,

    /// <summary>A symbolic link, a directory or a special file: no shared-memory object.</summary>
    Other,
}

/// <summary>One process's descriptor and mapping of a POSIX shared-memory object.</summary>
internal sealed class PosixSharedMemory : SharedMemoryObject
{
    internal const int LockNone = 0;
    internal const int LockShared = 1;
    internal const int LockExclusive = 2;

    private readonly string _shmName;
    private readonly string _path;
    private readonly SafeFileHandle _fd;
    private readonly ulong _inode;
    private nint _base;
    private long _reserved;
    private long _mapped;
    private int _protection;
    private int _lockState;

    internal PosixSharedMemory(string name, string shmName, SafeFileHandle fd, int lockState)
        : base(name)
    {
        _shmName = shmName;
        _path = PosixSharedMemoryProvider.PathOf(name);
        _fd = fd;
        _lockState = lockState;
        LibC.StatxBuffer stat = StatDescriptor();
        _inode = stat.Inode;
    }

    internal bool Writable { get; init; } = true;

    public override nint BaseAddress => _base;

    public override long MappedLength => _mapped;

    public override long QuerySize() => (long)StatDescriptor().Size;

    public override uint QueryOwnerUid() => StatDescriptor().Uid;

    public override bool IsOwnedByCaller(out uint foreignUid)
    {
        foreignUid = StatDescriptor().Uid;
        return foreignUid == LibC.GetEuid();
    }

    /// <summary>Whether the descriptor refers to a regular file.</summary>
    internal bool IsRegularFile => (StatDescriptor().Mode & LibC.S_IFMT) == LibC.S_IFREG;

    public override nint Map(long length, long reserve, bool writable)
    {
        if (_base != 0)
        {
            throw new InvalidOperationException("The object is already mapped.");
        }

        reserve = Math.Max(reserve, length);
        _protection = writable ? LibC.PROT_READ | LibC.PROT_WRITE : LibC.PROT_READ;
        nint reservation = LibC.Mmap(0, (nuint)reserve, LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
        if (reservation == -1)
        {
            throw Errno.ToException(Errno.Last, $"mmap (reserving {reserve} bytes of address space)", _path);
        }

        nint mapped = LibC.Mmap(reservation, (nuint)length, _protection, LibC.MAP_SHARED | LibC.MAP_FIXED, (int)_fd.DangerousGetHandle(), 0);
        if (mapped == -1)
        {
            int errno = Errno.Last;
            LibC.Munmap(reservation, (nuint)reserve);
            throw Errno.ToException(errno, "mmap", _path);
        }

        _base = reservation;
        _reserved = reserve;
        _mapped = length;
        return _base;
    }

    public override void MapMore(long newLength)
    {
        if (_base == 0)
        {
            throw new InvalidOperationException("The object is not mapped.");
        }

        if (newLength <= _mapped)
        {
            return;
        }

        if (newLength > _reserved)
        {
            throw new InvalidSegmentException(Name, $"cannot map {newLength} bytes: only {_reserved} bytes of address space were reserved (MaxCapacity).");
        }

        // MAP_FIXED into our own PROT_NONE reservation: nothing else can live there, and data already
        // mapped keeps its address.
        nint at = _base + (nint)_mapped;
        nint result = LibC.Mmap(at, (nuint)(newLength - _mapped), _protection, LibC.MAP_SHARED | LibC.MAP_FIXED, (int)_fd.DangerousGetHandle(), _mapped);
        if (result == -1)
        {
            throw Errno.ToException(Errno.Last, "mmap (growing)", _path);
        }

        _mapped = newLength;
    }

    public override void Unmap()
    {
        if (_base != 0)
        {
            LibC.Munmap(_base, (nuint)_reserved);
            _base = 0;
            _reserved = 0;
            _mapped = 0;
        }
    }

    public override void Extend(long newSize)
    {
        long current = QuerySize();
        if (newSize <= current)
        {
            return;
        }

        // fallocate reserves every page now (tmpfs supports it), so that a full /dev/shm is this
        // exception here and not a SIGBUS when a page is first touched.
        if (LibC.FAllocate((int)_fd.DangerousGetHandle(), 0, 0, newSize) == 0)
        {
            return;
        }

        int errno = Errno.Last;
        if (errno is Errno.ENOSPC or Errno.ENOMEM or Errno.EFBIG)
        {
            // tmpfs may have allocated part of the range before failing; give it back.
            LibC.FTruncate((int)_fd.DangerousGetHandle(), current);
            (long Total, long Free)? space = PosixSharedMemoryProvider.FileSystemSpace();
            throw new OutOfSharedMemoryException(
                $"No room in {PosixSharedMemoryProvider.Directory} for segment '{Name}' to reach {newSize} bytes: {Errno.Describe(errno)}" +
                (space is { } s ? $" ({s.Free} of its {s.Total} bytes free)" : string.Empty) +
                $". The size of the {PosixSharedMemoryProvider.Directory} tmpfs is the limit: free space there, or raise it (mount -o remount,size=... {PosixSharedMemoryProvider.Directory}).");
        }

        if (errno == Errno.EOPNOTSUPP)
        {
            // Not tmpfs: size the object without a reservation.
            if (LibC.FTruncate((int)_fd.DangerousGetHandle(), newSize) == 0)
            {
                return;
            }

            errno = Errno.Last;
        }

        throw Errno.ToException(errno, "fallocate", _path);
    }

    public override void Populate()
    {
        // fallocate already reserved the pages.
    }

    public override bool TryAcquireAttachToken()
    {
        if (_lockState != LockNone)
        {
            return true;
        }

        if (!TryFlock(LibC.LOCK_SH | LibC.LOCK_NB))
        {
            return false;
        }

        _lockState = LockShared;
        return true;
    }

    public override void DowngradeToAttachToken()
    {
        if (_lockState == LockExclusive)
        {
            // Linux converts a flock by dropping and re-taking it; the gap is harmless because the
            // state is already "ready", and the caller re-checks that the name is still ours.
            FlockOrThrow(_fd, LibC.LOCK_SH, Name);
            _lockState = LockShared;
        }
    }

    public override void ReleaseAttachToken()
    {
        if (_lockState != LockNone)
        {
            TryFlock(LibC.LOCK_UN);
            _lockState = LockNone;
        }
    }

    public override bool InitializerMayBeAlive(ProcessIdentity creator)
    {
        // The creator holds its exclusive lock from shm_open until "ready" and the kernel drops it
        // when the creator dies, so holding our shared lock proves there is no live creator. The one
        // gap is between the creator's shm_open and its flock; the caller covers it for empty objects.
        return _lockState == LockNone;
    }

    public override bool TryBecomeSole()
    {
        if (_lockState == LockExclusive)
        {
            return true;
        }

        // A failed non-blocking conversion leaves no lock at all (Linux drops the old one first).
        if (TryFlock(LibC.LOCK_EX | LibC.LOCK_NB))
        {
            _lockState = LockExclusive;
            return true;
        }

        _lockState = LockNone;
        return false;
    }

    public override bool TryLockForRemoval() => TryBecomeSole();

    public override bool IsCurrent()
    {
                int result = LibC.Statx(LibC.AT_FDCWD, _path, 0, LibC.STATX_BASIC_STATS, out LibC.StatxBuffer stat);
        if (result != 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.ENOENT)
            {
                return false;
            }

            throw Errno.ToException(errno, "statx", _path);
        }

        return stat.Inode == _inode;
    }

    public override void RemoveName()
    {
        if (LibC.ShmUnlink(_shmName) != 0 && Errno.Last != Errno.ENOENT)
        {
            throw Errno.LastError("shm_unlink", _path);
        }
    }

    protected override void Dispose(bool disposing)
    {
        Unmap();
        if (disposing)
        {
            _fd.Dispose(); // closing the descriptor also drops its flock
        }
    }

    internal static void FlockOrThrow(SafeFileHandle fd, int operation, string name)
    {
        while (LibC.Flock((int)fd.DangerousGetHandle(), operation) != 0)
        {
            int errno = Errno.Last;
            if (errno != Errno.EINTR)
            {
                throw Errno.ToException(errno, "flock", PosixSharedMemoryProvider.PathOf(name));
            }
        }
    }

    private bool TryFlock(int operation)
    {
        while (LibC.Flock((int)_fd.DangerousGetHandle(), operation) != 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.EWOULDBLOCK)
            {
                return false;
            }

            if (errno != Errno.EINTR)
            {
                throw Errno.ToException(errno, "flock", _path);
            }
        }

        return true;
    }

    private LibC.StatxBuffer StatDescriptor()
    {
                if (LibC.Statx((int)_fd.DangerousGetHandle(), string.Empty, LibC.AT_EMPTY_PATH, LibC.STATX_BASIC_STATS, out LibC.StatxBuffer stat) != 0)
        {
            throw Errno.LastError("statx", _path);
        }

        return stat;
    }
}
