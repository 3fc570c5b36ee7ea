using SharedMemChannels.Common;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// System V shared memory (<c>shmget</c>/<c>shmat</c>). The key is <see cref="KeyOf"/> of the name;
/// the name is also stored in the segment header, so a key shared by two names is detected on open.
/// Attachment is the kernel's own attach count (<c>shm_nattch</c>), which drops when a process dies.
/// System V segments do not grow.
/// </summary>
internal sealed class SystemVSharedMemoryProvider : SharedMemoryProvider
{
    public override SharedMemoryBackend Kind => SharedMemoryBackend.SystemV;

    /// <summary>
    /// The System V key of a segment name: the 32-bit FNV-1a hash of the UTF-8 bytes of
    /// <c>"shmc." + name</c>, read as a signed 32-bit integer; 0 (<c>IPC_PRIVATE</c>) becomes 1.
    /// </summary>
    public static int KeyOf(string name)
    {
        uint hash = Fnv1a.Hash32(ObjectPrefix + name);
        int key = unchecked((int)hash);
        return key == 0 ? 1 : key;
    }

    public override SharedMemoryObject? TryCreate(string name, long size, UnixFileMode mode)
    {
        int key = KeyOf(name);
        int id = LibC.ShmGet(key, (nuint)size, LibC.IPC_CREAT | LibC.IPC_EXCL | (int)mode);
        if (id < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.EEXIST)
            {
                return null;
            }

            if (errno is Errno.EINVAL or Errno.ENOSPC or Errno.ENOMEM)
            {
                throw new OutOfSharedMemoryException(
                    $"shmget could not create System V segment '{name}' of {size} bytes: {Errno.Describe(errno)} (see /proc/sys/kernel/shmmax, shmall and shmmni).");
            }

            throw Errno.ToException(errno, "shmget(IPC_CREAT|IPC_EXCL)", Describe(name));
        }

        return new SystemVSharedMemory(name, key, id, created: true);
    }

    public override SharedMemoryObject? TryOpen(string name, bool writable)
    {
        int key = KeyOf(name);
        int id = LibC.ShmGet(key, 0, 0);
        if (id < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.ENOENT)
            {
                return null;
            }

            throw Errno.ToException(errno, "shmget", Describe(name));
        }

        return new SystemVSharedMemory(name, key, id, created: false);
    }

    public override bool Exists(string name) => FindOwnSegment(name, out _) != Lookup.None;

    public override bool Remove(string name)
    {
        Lookup found = FindOwnSegment(name, out int id);
        if (found == Lookup.None)
        {
            return false;
        }

        if (found == Lookup.Unreadable)
        {
            // Its header cannot be read, so it cannot be told from another name's segment under the
            // same key: it is refused, as opening it is, rather than removed or reported missing.
            throw new UnauthorizedAccessException(
                $"{Describe(name)} belongs to another user and is not readable by this one; it was not removed.");
        }

        if (LibC.ShmCtl(id, LibC.IPC_RMID, out _) != 0)
        {
            int errno = Errno.Last;
            if (errno is Errno.EINVAL or Errno.EIDRM)
            {
                return false;
            }

            throw Errno.ToException(errno, "shmctl(IPC_RMID)", Describe(name));
        }

        return true;
    }

    public override IReadOnlyList<string> List()
    {
        var names = new List<string>();
        foreach (int id in ListIds())
        {
            string? name = ReadOwnName(id, out _);
            if (name is not null && SharedName.IsValid(name) && LibC.ShmGet(KeyOf(name), 0, 0) == id)
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    public override string Describe(string name) =>
        string.Create(CultureInfo.InvariantCulture, $"System V key 0x{KeyOf(name):x8} ('{name}')");

    /// <summary>
    /// Finds the live segment of this key whose header names <paramref name="name"/>. A segment of the
    /// key that this user may not read is <see cref="Lookup.Unreadable"/>: it exists as far as this
    /// user can tell, and opening it is refused (never "not found").
    /// </summary>
    private static Lookup FindOwnSegment(string name, out int id)
    {
        id = LibC.ShmGet(KeyOf(name), 0, 0);
        if (id < 0)
        {
            return Errno.Last is Errno.EACCES or Errno.EPERM ? Lookup.Unreadable : Lookup.None;
        }

        string? stored = ReadOwnName(id, out bool denied);
        return denied ? Lookup.Unreadable : stored == name ? Lookup.Own : Lookup.None;
    }

    private enum Lookup
    {
        None,
        Own,
        Unreadable,
    }

    /// <summary>
    /// Reads the segment name from the header of segment <paramref name="id"/> if it is one of ours;
    /// <paramref name="denied"/> when this user may not attach to it.
    /// </summary>
    private static string? ReadOwnName(int id, out bool denied)
    {
        denied = false;
        nint address = LibC.ShmAt(id, 0, LibC.SHM_RDONLY);
        if (address == -1)
        {
            denied = Errno.Last is Errno.EACCES or Errno.EPERM;
            return null;
        }

        try
        {
                        if (LibC.ShmCtl(id, LibC.IPC_STAT, out LibC.ShmIdDs info) != 0 || info.SegmentSize < (ulong)SegmentHeaderPeek.MinimumLength)
            {
                return null;
            }

            byte[] header = new byte[SegmentHeaderPeek.MinimumLength];
            LibC.CopyFrom(address, header);
            return SegmentHeaderPeek.ReadName(header);
        }
        finally
        {
            LibC.ShmDt(address);
        }
    }

    private static List<int> ListIds()
    {
        var ids = new List<int>();
        const string table = "/proc/sysvipc/shm";
        if (!File.Exists(table))
        {
            return ids;
        }

        foreach (string line in File.ReadLines(table).Skip(1))
        {
            string[] columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length > 1 && int.TryParse(columns[1], NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            {
                ids.Add(id);
            }
        }

        return ids;
    }
}

/// <summary>One process's attachment to a System V segment.</summary>
internal sealed class SystemVSharedMemory : SharedMemoryObject
{
    private readonly int _key;
    private readonly int _id;
    private readonly bool _created;
    private nint _base;
    private long _mapped;

    internal SystemVSharedMemory(string name, int key, int id, bool created)
        : base(name)
    {
        _key = key;
        _id = id;
        _created = created;
    }

    public override nint BaseAddress => _base;

    public override long MappedLength => _mapped;

    public override long QuerySize() => (long)Stat().SegmentSize;

    public override uint QueryOwnerUid() => Stat().Uid;

    public override bool IsOwnedByCaller(out uint foreignUid)
    {
        // The owner can be changed (IPC_SET) by the creator; the creator cannot. Both must be us.
        LibC.ShmIdDs info = Stat();
        uint me = LibC.GetEuid();
        foreignUid = info.Uid != me ? info.Uid : info.CreatorUid;
        return info.Uid == me && info.CreatorUid == me;
    }

    public override nint Map(long length, long reserve, bool writable)
    {
        if (_base != 0)
        {
            throw new InvalidOperationException("The segment is already attached.");
        }

        nint address = LibC.ShmAt(_id, 0, writable ? 0 : LibC.SHM_RDONLY);
        if (address == -1)
        {
            throw Errno.ToException(Errno.Last, "shmat", Describe());
        }

        _base = address;
        _mapped = Math.Min(length, QuerySize());
        return _base;
    }

    public override void MapMore(long newLength)
    {
        if (newLength > _mapped)
        {
            throw new InvalidSegmentException(Name, $"a System V segment cannot grow, yet {newLength} bytes were asked of its {_mapped}.");
        }
    }

    public override void Unmap()
    {
        if (_base != 0)
        {
            LibC.ShmDt(_base);
            _base = 0;
            _mapped = 0;
        }
    }

    public override void Extend(long newSize)
    {
        if (newSize > QuerySize())
        {
            throw new OutOfSharedMemoryException($"System V segment '{Name}' cannot grow beyond its {QuerySize()} bytes.");
        }
    }

    public override void Populate()
    {
        // System V pages are allocated on first touch; populating them now makes a shortage an
        // error here (ENOMEM) instead of a fault later. Kernels before 5.14 lack the advice: skip.
        if (_base != 0 && _created &&
            LibC.Madvise(_base, (nuint)_mapped, LibC.MADV_POPULATE_WRITE) != 0)
        {
            int errno = Errno.Last;
            if (errno is Errno.ENOMEM or Errno.EFAULT)
            {
                throw new OutOfSharedMemoryException($"Not enough memory to populate System V segment '{Name}' ({_mapped} bytes).");
            }
        }
    }

    public override bool TryAcquireAttachToken() => true; // attaching is the token: the kernel counts it

    public override void DowngradeToAttachToken()
    {
    }

    public override void ReleaseAttachToken()
    {
    }

    public override bool InitializerMayBeAlive(ProcessIdentity creator)
    {
        IProcessInfo processes = PlatformServices.Processes;
        if (creator.Pid != 0)
        {
            return processes.Probe(creator) != Liveness.Dead;
        }

        // The creator had not written its identity yet; the kernel recorded its pid.
        int pid = Stat().CreatorPid;
        return pid == 0 || processes.Probe(new ProcessIdentity(pid, 0, processes.Current.PidNamespace)) != Liveness.Dead;
    }

    public override bool TryBecomeSole() => Stat().AttachCount <= (_base != 0 ? 1UL : 0UL);

    public override bool TryLockForRemoval() => true;

    public override bool IsCurrent()
    {
        if (LibC.ShmGet(_key, 0, 0) != _id)
        {
            return false;
        }

                return LibC.ShmCtl(_id, LibC.IPC_STAT, out LibC.ShmIdDs info) == 0 && (info.Mode & LibC.SHM_DEST) == 0;
    }

    public override void RemoveName()
    {
        // By id, not by key: a newer segment under the same key is never removed by mistake.
        if (LibC.ShmCtl(_id, LibC.IPC_RMID, out _) != 0)
        {
            int errno = Errno.Last;
            if (errno is not (Errno.EINVAL or Errno.EIDRM))
            {
                throw Errno.ToException(errno, "shmctl(IPC_RMID)", Describe());
            }
        }
    }

    protected override void Dispose(bool disposing) => Unmap();

    private LibC.ShmIdDs Stat()
    {
                if (LibC.ShmCtl(_id, LibC.IPC_STAT, out LibC.ShmIdDs info) != 0)
        {
            int errno = Errno.Last;
            if (errno is Errno.EINVAL or Errno.EIDRM)
            {
                return default; // removed meanwhile: size 0, nobody attached
            }

            throw Errno.ToException(errno, "shmctl(IPC_STAT)", Describe());
        }

        return info;
    }

    private string Describe() => string.Create(CultureInfo.InvariantCulture, $"System V segment '{Name}' (key 0x{_key:x8}, id {_id})");
}
