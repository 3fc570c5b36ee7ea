namespace SharedMemChannels.Platform;

/// <summary>
/// Creates, opens, lists and removes the named objects of one shared-memory facility. All names
/// given here are already validated (<see cref="SharedName"/>); the provider adds its own prefix.
/// </summary>
internal abstract class SharedMemoryProvider
{
    /// <summary>The prefix of every object this library makes, so that it never touches another program's.</summary>
    public const string ObjectPrefix = "shmc.";

    /// <summary>Which facility this is.</summary>
    public abstract SharedMemoryBackend Kind { get; }

    /// <summary>
    /// Creates a new object of <paramref name="size"/> bytes, exclusively: returns null when the name is
    /// taken. The object is returned locked for initialization (its creator holds it exclusively).
    /// </summary>
    public abstract SharedMemoryObject? TryCreate(string name, long size, UnixFileMode mode);

    /// <summary>Opens an existing object, or returns null when there is none of that name.</summary>
    public abstract SharedMemoryObject? TryOpen(string name, bool writable);

    /// <summary>
    /// Whether an object of that name exists, as opening sees it: POSIX counts only a regular file (a
    /// symbolic link or a directory of the name is no object), System V counts a segment whose header
    /// names it, or one this user may not read (it cannot be told apart, and opening it is refused).
    /// </summary>
    public abstract bool Exists(string name);

    /// <summary>Removes the name; existing mappings stay valid until detached. False when there was none.</summary>
    public abstract bool Remove(string name);

    /// <summary>The names of the objects of this library, as the user named them (prefix removed).</summary>
    public abstract IReadOnlyList<string> List();

    /// <summary>Where the object lives, for messages: a path or a key.</summary>
    public abstract string Describe(string name);
}

/// <summary>
/// One process's handle on a shared-memory object: its size, its mapping, and the operations of the
/// create/open/detach protocol that differ between facilities (see <c>SharedSegment</c>).
/// </summary>
internal abstract class SharedMemoryObject : IDisposable
{
    protected SharedMemoryObject(string name) => Name = name;

    /// <summary>The segment name (without prefix).</summary>
    public string Name { get; }

    /// <summary>The base address of the current mapping, or 0.</summary>
    public abstract nint BaseAddress { get; }

    /// <summary>How many bytes from the base are mapped now.</summary>
    public abstract long MappedLength { get; }

    /// <summary>The size of the backing object as the kernel reports it.</summary>
    public abstract long QuerySize();

    /// <summary>The uid that owns the object.</summary>
    public abstract uint QueryOwnerUid();

    /// <summary>
    /// Whether the object belongs to this process's effective uid: POSIX, the file's owner; System V,
    /// both the owner and the creator (<c>shm_perm.uid</c> and <c>cuid</c>). Otherwise
    /// <paramref name="foreignUid"/> is the uid that differs.
    /// </summary>
    public abstract bool IsOwnedByCaller(out uint foreignUid);

    /// <summary>
    /// Maps bytes [0, <paramref name="length"/>) at the front of a fresh reservation of
    /// <paramref name="reserve"/> bytes of address space, so that later growth can map more at the same base.
    /// </summary>
    public abstract nint Map(long length, long reserve, bool writable);

    /// <summary>Maps bytes up to <paramref name="newLength"/>, in place: the base does not move.</summary>
    public abstract void MapMore(long newLength);

    /// <summary>Unmaps everything this process mapped of the object.</summary>
    public abstract void Unmap();

    /// <summary>
    /// Makes the object <paramref name="newSize"/> bytes long with every page reserved, so that touching
    /// any of them later can never fail with SIGBUS. Throws <see cref="OutOfSharedMemoryException"/> when
    /// the system has no room.
    /// </summary>
    public abstract void Extend(long newSize);

    /// <summary>Forces the pages of the current mapping into memory, failing with an exception rather than a signal.</summary>
    public abstract void Populate();

    /// <summary>
    /// Takes this process's token of attachment, which the kernel drops when the process dies. False when
    /// another process holds the object exclusively (its creator initializing it, or a process removing it).
    /// </summary>
    public abstract bool TryAcquireAttachToken();

    /// <summary>Gives the creator's exclusive hold back as an ordinary attachment.</summary>
    public abstract void DowngradeToAttachToken();

    /// <summary>Lets go of this process's token or exclusive hold.</summary>
    public abstract void ReleaseAttachToken();

    /// <summary>
    /// Whether the process that initializes the object may still be at work. Called while this process
    /// holds its attachment token; <paramref name="creator"/> is what the header says, if anything.
    /// </summary>
    public abstract bool InitializerMayBeAlive(ProcessIdentity creator);

    /// <summary>
    /// Tries to make this process the only one attached. On success the caller may remove the name; on
    /// failure this process may have lost its token and must take it again before relying on it.
    /// </summary>
    public abstract bool TryBecomeSole();

    /// <summary>
    /// Serializes the removal of a dead creator's leftover: true when this process may remove it now.
    /// POSIX: the exclusive lock (so two cleaners never remove each other's fresh segment). System V:
    /// always, since removal is by id and cannot reach a newer segment.
    /// </summary>
    public abstract bool TryLockForRemoval();

    /// <summary>Whether the name still refers to this very object (it was not removed or replaced).</summary>
    public abstract bool IsCurrent();

    /// <summary>Removes the name of this very object (never a newer object of the same name).</summary>
    public abstract void RemoveName();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Unmaps and closes.</summary>
    protected abstract void Dispose(bool disposing);
}
