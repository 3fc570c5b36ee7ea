using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace SharedMemChannels;

/// <summary>
/// A named region of shared memory that several processes map: a versioned header, a table of the
/// processes attached to it, and a heap from which everything else is allocated. It grows on demand
/// up to <see cref="MaxCapacity"/> without moving: addresses of existing data stay valid.
/// </summary>
/// <remarks>
/// <para>
/// Every process that uses a segment holds its own <see cref="SharedSegment"/> and disposes it to
/// detach. A process that dies without detaching is found dead by the others (pid and start time,
/// and a lock the kernel drops at death), and what it held is reclaimed.
/// </para>
/// <para>
/// Spans and references obtained from a segment are valid until it is disposed. The instance is
/// thread-safe, except that <see cref="Dispose"/> must not run concurrently with other calls.
/// </para>
/// </remarks>
public sealed partial class SharedSegment : IDisposable
{
    private readonly SegmentAttachment _attachment;

    private SharedSegment(SharedMemoryObject backing, SegmentMemory memory, SharedMemoryBackend backend, bool created)
    {
        _attachment = new SegmentAttachment(backing, memory, backend, created);
        if (!created)
        {
            ReleaseDeadChannelReferences();
        }
    }

    /// <summary>Channels whose last reference died with its process go now (see <see cref="Channels.ChannelLifetime"/>).</summary>
    private void ReleaseDeadChannelReferences()
    {
        try
        {
            Channels.ChannelLifetime.ReleaseDeadReferences(_attachment);
        }
        catch (InvalidSegmentException)
        {
            // A damaged directory: whoever uses it finds out; attaching must not fail for it.
        }
    }

    /// <summary>The segment's name.</summary>
    public string Name => _attachment.Name;

    /// <summary>The facility that backs the segment.</summary>
    public SharedMemoryBackend Backend => _attachment.Backend;

    /// <summary>Whether this instance created the segment (rather than opened an existing one).</summary>
    public bool IsCreator => _attachment.IsCreator;

    /// <summary>The segment's current size in bytes. It only grows, up to <see cref="MaxCapacity"/>.</summary>
    /// <exception cref="ObjectDisposedException">The segment was disposed (its memory is no longer mapped).</exception>
    public long Capacity
    {
        get
        {
            ThrowIfDisposed();
            return Volatile.Read(ref _attachment.Memory.Header.Capacity);
        }
    }

    /// <summary>The size the segment may grow to.</summary>
    public long MaxCapacity => _attachment.Memory.MaxCapacity;

    /// <summary>Whether the name is removed when the last live process detaches.</summary>
    public bool RemoveOnLastDetach => _attachment.RemoveOnLastDetach;

    /// <summary>Whether <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => _attachment.IsDetached;

    /// <summary>What this process's attachment holds; the layers above the facade work with it.</summary>
    internal SegmentAttachment Attachment => _attachment;

    internal SegmentMemory Memory => _attachment.Memory;

    internal ProcessTable Processes => _attachment.Processes;

    internal OwnerId Owner => _attachment.Owner;

    /// <summary>Where the segment is mapped in this process; stable while attached (for tests and diagnostics).</summary>
    internal nint BaseAddress => _attachment.Memory.BaseAddress;

    /// <summary>Creates a segment with default options; fails if one of that name exists.</summary>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="SharedName.MaxLength"/> characters.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="IOException">A segment of that name exists.</exception>
    /// <exception cref="InvalidSegmentException">The name is held by something that is not a segment (a foreign object, a symbolic link...).</exception>
    /// <exception cref="UnauthorizedAccessException">The name is held by another user's object (see <see cref="SegmentOptions.AllowForeignOwner"/>).</exception>
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the segment.</exception>
    public static SharedSegment Create(string name) => Create(name, new SegmentOptions());

    /// <summary>Creates a segment; fails if one of that name exists.</summary>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="SharedName.MaxLength"/> characters.</param>
    /// <param name="options">Capacity, growth limit, backend, permissions, lifetime.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="IOException">A segment of that name exists.</exception>
    /// <exception cref="InvalidSegmentException">
    /// The name is held by something that is not a segment (a foreign object, a symbolic link...), or by
    /// another user's leftover.
    /// </exception>
    /// <exception cref="UnauthorizedAccessException">The name is held by another user's object (see <see cref="SegmentOptions.AllowForeignOwner"/>).</exception>
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the segment.</exception>
    /// <remarks>
    /// A leftover of that name that no live process could be using (its creator died before finishing,
    /// or it was to be removed on last detach and everyone attached died) is removed and replaced, if it
    /// belongs to this process's user and holds nothing but what a dying creator of this library leaves.
    /// Anything else of that name is left as it is.
    /// </remarks>
    public static SharedSegment Create(string name, SegmentOptions options)
    {
        return Attach(SegmentOpener.Open(name, options, OpenMode.Create));
    }

    /// <summary>
    /// Opens an existing segment, looking for it among POSIX segments first, then System V ones.
    /// </summary>
    /// <param name="name">The segment's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="FileNotFoundException">There is no segment of that name.</exception>
    /// <exception cref="InvalidSegmentException">
    /// The object of that name is not a usable segment, or its creator died before finishing it.
    /// </exception>
    /// <exception cref="UnauthorizedAccessException">
    /// The segment belongs to another user (foreign owners need <see cref="SegmentOptions.AllowForeignOwner"/>,
    /// which this overload leaves false), or is not shared with this one.
    /// </exception>
    /// <exception cref="TimeoutException">Its creator did not finish initializing it in time.</exception>
    /// <remarks>Opening never removes anything, not even a dead creator's leftover.</remarks>
    public static SharedSegment Open(string name)
    {
        return Attach(SegmentOpener.Open(name));
    }

    /// <summary>Opens an existing segment of the backend in <paramref name="options"/>.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="options">The backend, the open timeout and whether another user's segment may be opened; the rest is read from the segment.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="FileNotFoundException">There is no segment of that name.</exception>
    /// <exception cref="InvalidSegmentException">
    /// The object of that name is not a usable segment, or its creator died before finishing it.
    /// </exception>
    /// <exception cref="UnauthorizedAccessException">
    /// The segment belongs to another user and <see cref="SegmentOptions.AllowForeignOwner"/> is not set,
    /// or it is not shared with this one.
    /// </exception>
    /// <exception cref="TimeoutException">Its creator did not finish initializing it in time.</exception>
    /// <remarks>Opening never removes anything, not even a dead creator's leftover.</remarks>
    public static SharedSegment Open(string name, SegmentOptions options)
    {
        return Attach(SegmentOpener.Open(name, options, OpenMode.Open));
    }

    /// <summary>Opens the segment, or creates it with default options if there is none.</summary>
    /// <param name="name">The segment's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="InvalidSegmentException">The object of that name is not a usable segment.</exception>
    /// <exception cref="UnauthorizedAccessException">The name is held by another user's object.</exception>
    /// <exception cref="TimeoutException">Another creator did not finish in time.</exception>
    public static SharedSegment OpenOrCreate(string name) => OpenOrCreate(name, new SegmentOptions());

    /// <summary>
    /// Opens the segment, or creates it if there is none. Any number of processes may race here:
    /// exactly one creates, and the others wait until it is initialized.
    /// </summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="options">Used when creating; when opening only the backend, the timeout and <see cref="SegmentOptions.AllowForeignOwner"/> count.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="InvalidSegmentException">
    /// The object of that name is not a usable segment (or is another user's leftover).
    /// </exception>
    /// <exception cref="UnauthorizedAccessException">
    /// The name is held by another user's object and <see cref="SegmentOptions.AllowForeignOwner"/> is not set.
    /// </exception>
    /// <exception cref="TimeoutException">Another creator did not finish in time.</exception>
    /// <remarks>A dead creator's leftover is replaced as <see cref="Create(string, SegmentOptions)"/> does.</remarks>
    public static SharedSegment OpenOrCreate(string name, SegmentOptions options)
    {
        return Attach(SegmentOpener.Open(name, options, OpenMode.OpenOrCreate));
    }

    /// <summary>Whether a segment of this name exists, with either backend.</summary>
    /// <param name="name">The segment's name.</param>
    /// <remarks>
    /// True when opening would find an object: a POSIX regular file of the name (whatever it holds,
    /// whoever owns it; a symbolic link or a directory of the name is not one), or a System V segment
    /// of the name's key whose header names it, or that this user may not read (opening it is then an
    /// <see cref="UnauthorizedAccessException"/>).
    /// </remarks>
    public static bool Exists(string name) => SegmentOpener.Exists(name);

    /// <summary>Whether a segment of this name exists with the given backend.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="backend">The backend to look in.</param>
    /// <remarks>What counts is as in <see cref="Exists(string)"/>.</remarks>
    public static bool Exists(string name, SharedMemoryBackend backend) => SegmentOpener.Exists(name, backend);

    /// <summary>
    /// Removes the name of a segment (of either backend). Processes attached keep their mapping until
    /// they detach; nobody can open it any more. Returns false when there was no such segment (what
    /// counts is as in <see cref="Exists(string)"/>: a symbolic link or directory of the name is left alone).
    /// </summary>
    /// <param name="name">The segment's name.</param>
    /// <exception cref="UnauthorizedAccessException">The segment is another user's and this one may not remove it.</exception>
    public static bool Remove(string name) => SegmentOpener.Remove(name);

    /// <summary>Removes the name of a segment of the given backend. Returns false when there was none.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="backend">The backend to remove it from.</param>
    /// <exception cref="UnauthorizedAccessException">The segment is another user's and this one may not remove it.</exception>
    public static bool Remove(string name, SharedMemoryBackend backend) => SegmentOpener.Remove(name, backend);

    /// <summary>
    /// Finds processes that attached and died without detaching, releases everything they held (their
    /// heap caches and blocks, their locks, their references to channels), and frees their process-table slots. Runs by itself when a
    /// process attaches, when memory runs out, and when a lock holder is found dead; call it to reclaim
    /// sooner. Returns how many dead processes were reclaimed.
    /// </summary>
    public int ReclaimDeadProcesses()
    {
        ThrowIfDisposed();
        int reclaimed = _attachment.ReclaimDeadProcesses();
        ReleaseDeadChannelReferences();
        return reclaimed;
    }

    /// <summary>
    /// Detaches: returns this attachment's heap caches, frees the blocks it still owns
    /// (<see cref="ShmOwnership.Process"/>; blocks given to the segment stay), frees its process-table
    /// slot and unmaps the segment.
    /// If the segment was created with <see cref="SegmentOptions.RemoveOnLastDetach"/> and no other live
    /// process is attached, its name is removed too.
    /// </summary>
    public void Dispose() => _attachment.Detach();

    /// <inheritdoc />
    public override string ToString() =>
        IsDisposed ? $"SharedSegment '{Name}' (disposed)" : $"SharedSegment '{Name}' ({Backend}, {Capacity} of {MaxCapacity} bytes)";

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <summary>
    /// Enters an operation on <paramref name="segment"/>'s mapping (see <see cref="SegmentAttachment.EnterUse"/>):
    /// a dispose on another thread waits for it; after one, <see cref="ObjectDisposedException"/>.
    /// </summary>
    internal static SegmentAttachment.Use EnterUse(SharedSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        return segment._attachment.EnterUse();
    }

    /// <summary>Builds the facade on what the opener opened; if that fails, the opened object is given up.</summary>
    private static SharedSegment Attach(OpenedSegment opened)
    {
        try
        {
            return new SharedSegment(opened.Backing, opened.Memory, opened.Backend, opened.Created);
        }
        catch
        {
            opened.Abandon();
            throw;
        }
    }
}
