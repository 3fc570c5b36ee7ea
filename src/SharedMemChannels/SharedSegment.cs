using System.Text;
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

    private SharedSegment(SharedMemoryObject backing, SegmentMemory memory, SharedMemoryBackend backend, bool created) =>
        _attachment = new SegmentAttachment(backing, memory, backend, created);

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
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the segment.</exception>
    public static SharedSegment Create(string name) => Create(name, new SegmentOptions());

    /// <summary>Creates a segment; fails if one of that name exists.</summary>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="SharedName.MaxLength"/> characters.</param>
    /// <param name="options">Capacity, growth limit, backend, permissions, lifetime.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="IOException">A segment of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The system has no room for the segment.</exception>
    /// <remarks>
    /// A leftover of that name that no live process could be using (its creator died before finishing,
    /// or it was to be removed on last detach and everyone attached died) is removed and replaced.
    /// </remarks>
    public static SharedSegment Create(string name, SegmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OpenCore(name, options.Clone(), OpenMode.Create);
    }

    /// <summary>
    /// Opens an existing segment, looking for it among POSIX segments first, then System V ones.
    /// </summary>
    /// <param name="name">The segment's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="FileNotFoundException">There is no segment of that name.</exception>
    /// <exception cref="InvalidSegmentException">The object of that name is not a usable segment.</exception>
    /// <exception cref="UnauthorizedAccessException">The segment belongs to another user and is not shared with this one.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish initializing it in time.</exception>
    public static SharedSegment Open(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        if (!PlatformServices.GetProvider(SharedMemoryBackend.Posix).Exists(name) &&
            PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Exists(name))
        {
            return OpenCore(name, new SegmentOptions { Backend = SharedMemoryBackend.SystemV }, OpenMode.Open);
        }

        return OpenCore(name, new SegmentOptions(), OpenMode.Open);
    }

    /// <summary>Opens an existing segment of the backend in <paramref name="options"/>.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="options">The backend and the open timeout; the rest is read from the segment.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="FileNotFoundException">There is no segment of that name.</exception>
    /// <exception cref="InvalidSegmentException">The object of that name is not a usable segment.</exception>
    /// <exception cref="UnauthorizedAccessException">The segment belongs to another user and is not shared with this one.</exception>
    /// <exception cref="TimeoutException">Its creator did not finish initializing it in time.</exception>
    public static SharedSegment Open(string name, SegmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OpenCore(name, options.Clone(), OpenMode.Open);
    }

    /// <summary>Opens the segment, or creates it with default options if there is none.</summary>
    /// <param name="name">The segment's name.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="InvalidSegmentException">The object of that name is not a usable segment.</exception>
    /// <exception cref="TimeoutException">Another creator did not finish in time.</exception>
    public static SharedSegment OpenOrCreate(string name) => OpenOrCreate(name, new SegmentOptions());

    /// <summary>
    /// Opens the segment, or creates it if there is none. Any number of processes may race here:
    /// exactly one creates, and the others wait until it is initialized.
    /// </summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="options">Used when creating; when opening only the backend and timeout count.</param>
    /// <exception cref="ArgumentException">The name or the options are not valid.</exception>
    /// <exception cref="InvalidSegmentException">The object of that name is not a usable segment.</exception>
    /// <exception cref="TimeoutException">Another creator did not finish in time.</exception>
    public static SharedSegment OpenOrCreate(string name, SegmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OpenCore(name, options.Clone(), OpenMode.OpenOrCreate);
    }

    /// <summary>Whether a segment of this name exists, with either backend.</summary>
    /// <param name="name">The segment's name.</param>
    public static bool Exists(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(SharedMemoryBackend.Posix).Exists(name) ||
               PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Exists(name);
    }

    /// <summary>Whether a segment of this name exists with the given backend.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="backend">The backend to look in.</param>
    public static bool Exists(string name, SharedMemoryBackend backend)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(backend).Exists(name);
    }

    /// <summary>
    /// Removes the name of a segment (of either backend). Processes attached keep their mapping until
    /// they detach; nobody can open it any more. Returns false when there was no such segment.
    /// </summary>
    /// <param name="name">The segment's name.</param>
    public static bool Remove(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        bool posix = PlatformServices.GetProvider(SharedMemoryBackend.Posix).Remove(name);
        bool systemV = PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Remove(name);
        return posix || systemV;
    }

    /// <summary>Removes the name of a segment of the given backend. Returns false when there was none.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="backend">The backend to remove it from.</param>
    public static bool Remove(string name, SharedMemoryBackend backend)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(backend).Remove(name);
    }

    /// <summary>
    /// Finds processes that attached and died without detaching, releases everything they held (their
    /// heap caches and blocks, their locks), and frees their process-table slots. Runs by itself when a
    /// process attaches, when memory runs out, and when a lock holder is found dead; call it to reclaim
    /// sooner. Returns how many dead processes were reclaimed.
    /// </summary>
    public int ReclaimDeadProcesses()
    {
        ThrowIfDisposed();
        return _attachment.ReclaimDeadProcesses();
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

    private enum OpenMode
    {
        Create,
        Open,
        OpenOrCreate,
    }

    private enum AttachOutcome
    {
        Attached,
        Retry,
    }

    private static SharedSegment OpenCore(string name, SegmentOptions options, OpenMode mode)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        if (mode != OpenMode.Open)
        {
            options.ValidateForCreate();
        }

        SharedMemoryProvider provider = PlatformServices.GetProvider(options.Backend);
        Deadline deadline = Deadline.After(options.OpenTimeout);
        int emptyStrikes = 0;
        while (true)
        {
            if (mode != OpenMode.Open)
            {
                SharedSegment? created = TryCreateNew(provider, name, options);
                if (created is not null)
                {
                    return created;
                }
            }

            SharedMemoryObject? existing = provider.TryOpen(name, writable: true);
            if (existing is null)
            {
                if (mode == OpenMode.Open)
                {
                    throw new FileNotFoundException($"There is no segment '{name}' ({provider.Describe(name)}).", provider.Describe(name));
                }

                continue; // removed between our create and our open: create again
            }

            if (TryAttach(existing, name, provider, mode, deadline, ref emptyStrikes, out SharedSegment? attached) == AttachOutcome.Attached)
            {
                return attached!;
            }

            if (deadline.HasExpired)
            {
                throw new TimeoutException($"Segment '{name}' did not become ready within {options.OpenTimeout}.");
            }
        }
    }

    /// <summary>
    /// Creates and initializes a new segment, or returns null when the name is taken (or our new object
    /// was removed by a peer that took it for a dead creator's leftover; the caller starts over).
    /// </summary>
    private static SharedSegment? TryCreateNew(SharedMemoryProvider provider, string name, SegmentOptions options)
    {
        long capacity = SegmentOptions.RoundToPage(options.Capacity);
        long maxCapacity = SegmentOptions.RoundToPage(options.MaxCapacity);
        SharedMemoryObject? backing = provider.TryCreate(name, capacity, options.UnixFileMode);
        if (backing is null)
        {
            return null;
        }

        SharedSegment? segment = null;
        try
        {
            backing.Extend(capacity);
            backing.Map(capacity, maxCapacity, writable: true);
            backing.Populate();
            var memory = new SegmentMemory(backing, maxCapacity);
            WriteHeader(memory, name, options, provider.Kind, capacity, maxCapacity);
            Heap.SharedHeap.Initialize(memory);
            ref SegmentHeader header = ref memory.Header;
            header.Checksum = SegmentHeaderPeek.ComputeChecksum(memory.Span(0, SegmentHeader.Size));

            SegmentTestHooks.BeforeReady?.Invoke(name);

            Volatile.Write(ref header.State, SegmentHeader.StateReady);
            PlatformServices.Futex.Wake(ref header.State, int.MaxValue);
            backing.DowngradeToAttachToken();
            if (!backing.IsCurrent())
            {
                backing.Dispose();
                return null;
            }

            segment = new SharedSegment(backing, memory, provider.Kind, created: true);
            return segment;
        }
        catch
        {
            if (segment is null)
            {
                try
                {
                    backing.RemoveName();
                }
                finally
                {
                    backing.Dispose();
                }
            }

            throw;
        }
    }

    private static void WriteHeader(SegmentMemory memory, string name, SegmentOptions options, SharedMemoryBackend backend, long capacity, long maxCapacity)
    {
        ref SegmentHeader header = ref memory.Header;
        ProcessIdentity me = PlatformServices.Processes.Current;

        // The magic first, with one 8-byte store, while the rest is still zero (state "initializing"):
        // an opener that can look while we work (System V has no lock to keep it out) then sees either
        // all zeros or our magic, never a half-written header it would take for a foreign object.
        Volatile.Write(ref header.State, SegmentHeader.StateInitializing);
        Volatile.Write(ref header.Magic, SegmentHeader.MagicValue);
        header.CreatorPid = me.Pid;
        header.CreatorStartTime = me.StartTime;
        header.CreatorPidNamespace = me.PidNamespace;
        header.HeaderSize = SegmentHeader.Size;
        header.LayoutVersion = SegmentHeader.CurrentVersion;

        header.Flags = options.RemoveOnLastDetach ? SegmentHeader.FlagRemoveOnLastDetach : 0;
        header.MaxCapacity = maxCapacity;
        header.InitialCapacity = capacity;
        header.Mode = (uint)options.UnixFileMode;
        header.CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        header.ProcessTableOffset = SegmentLayout.ProcessTableOffset;
        header.ProcessTableSlots = SegmentLayout.ProcessTableSlots;
        header.HeapControlOffset = SegmentLayout.HeapControlOffset;
        header.HeapStart = SegmentLayout.HeapStart;
        header.Backend = (uint)backend;
        Span<byte> nameField = memory.Span(SegmentHeader.NameOffset, SegmentHeader.NameCapacity);
        nameField.Clear();
        header.NameLength = (uint)Encoding.UTF8.GetBytes(name, nameField);
        Volatile.Write(ref header.Capacity, capacity);
    }

    /// <summary>
    /// Attaches to an existing object, waiting while its creator initializes it. Takes ownership of
    /// <paramref name="backing"/>: on every outcome but success it is disposed.
    /// </summary>
    private static AttachOutcome TryAttach(
        SharedMemoryObject backing, string name, SharedMemoryProvider provider, OpenMode mode, Deadline deadline, ref int emptyStrikes, out SharedSegment? attached)
    {
        attached = null;
        SegmentMemory? peek = null;
        bool keep = false;
        try
        {
            while (!deadline.HasExpired)
            {
                if (!backing.TryAcquireAttachToken())
                {
                    // Someone holds the object exclusively: its creator is initializing it, or a peer is
                    // removing it. Sleep on the state word if the header is there to sleep on.
                    if (!backing.IsCurrent())
                    {
                        return AttachOutcome.Retry;
                    }

                    peek ??= TryMapHeader(backing);
                    SegmentTestHooks.OnWaitingForCreator(name);
                    WaitForState(peek, deadline);
                    continue;
                }

                long size = backing.QuerySize();
                peek ??= TryMapHeader(backing);
                byte[] copy = CopyHeader(peek, backing, size);
                HeaderKind kind = ClassifyObject(copy, size);
                switch (kind)
                {
                    case HeaderKind.Foreign:
                        throw new InvalidSegmentException(name, $"{provider.Describe(name)} is not a SharedMemChannels segment (unknown header).");

                    case HeaderKind.OtherVersion:
                        throw new InvalidSegmentException(
                            name, $"it has layout version {SegmentHeaderPeek.Version(copy)}; this library reads version {SegmentHeader.CurrentVersion}.");

                    case HeaderKind.Empty or HeaderKind.Initializing:
                        var creator = kind == HeaderKind.Initializing
                            ? new ProcessIdentity(BitConverter.ToInt32(copy, 48), BitConverter.ToUInt64(copy, 56), BitConverter.ToUInt64(copy, 64))
                            : default;
                        if (backing.InitializerMayBeAlive(creator))
                        {
                            SegmentTestHooks.OnWaitingForCreator(name);
                            WaitForState(peek, deadline);
                            continue;
                        }

                        if (size == 0 && provider.Kind == SharedMemoryBackend.Posix && ++emptyStrikes <= 3)
                        {
                            // An empty object whose creator we cannot see may be one that has just
                            // called shm_open and not yet taken its lock. Give it a moment.
                            backing.ReleaseAttachToken();
                            Thread.Sleep(emptyStrikes);
                            continue;
                        }

                        RemoveLeftover(backing, size);
                        return AttachOutcome.Retry;

                    default:
                        // The size again, read after the header: growth reserves the pages before it
                        // publishes the new capacity, so this size is never behind the copied header.
                        SegmentHeader header = SegmentHeaderPeek.Validate(copy, name, backing.QuerySize(), provider.Kind);
                        if (mode != OpenMode.Open && (header.Flags & SegmentHeader.FlagRemoveOnLastDetach) != 0)
                        {
                            if (backing.TryBecomeSole())
                            {
                                // Meant to vanish with its last user, and nobody alive is attached: a
                                // leftover of processes that all died. Replace it.
                                if (backing.IsCurrent())
                                {
                                    backing.RemoveName();
                                }

                                return AttachOutcome.Retry;
                            }

                            if (!backing.TryAcquireAttachToken())
                            {
                                continue;
                            }
                        }

                        if (!backing.IsCurrent())
                        {
                            return AttachOutcome.Retry;
                        }

                        if (mode == OpenMode.Create)
                        {
                            throw new IOException($"Segment '{name}' already exists ({provider.Describe(name)}).");
                        }

                        backing.Unmap();
                        peek = null;
                        backing.Map(header.Capacity, header.MaxCapacity, writable: true);
                        var memory = new SegmentMemory(backing, header.MaxCapacity);
                        attached = new SharedSegment(backing, memory, provider.Kind, created: false);
                        keep = true;
                        return AttachOutcome.Attached;
                }
            }

            return AttachOutcome.Retry;
        }
        finally
        {
            if (!keep)
            {
                backing.Dispose();
            }
        }
    }

    private static HeaderKind ClassifyObject(byte[] copy, long size)
    {
        if (size == 0)
        {
            return HeaderKind.Empty;
        }

        if (size < SegmentHeader.Size)
        {
            // Our creators size the object to its full capacity in one call: a small object with
            // content was written by something else.
            return copy.AsSpan(0, (int)size).ContainsAnyExcept((byte)0) ? HeaderKind.Foreign : HeaderKind.Empty;
        }

        return SegmentHeaderPeek.Classify(copy);
    }

    private static SegmentMemory? TryMapHeader(SharedMemoryObject backing)
    {
        if (backing.QuerySize() < SegmentHeader.Size)
        {
            return null;
        }

        backing.Map(SegmentHeader.Size, SegmentHeader.Size, writable: true);
        return new SegmentMemory(backing, SegmentHeader.Size);
    }

    private static byte[] CopyHeader(SegmentMemory? peek, SharedMemoryObject backing, long size)
    {
        var copy = new byte[SegmentHeader.Size];
        if (peek is not null)
        {
            peek.Span(0, SegmentHeader.Size).CopyTo(copy);
        }
        else if (size > 0)
        {
            // Smaller than a header: map what there is, read it, let go.
            backing.Map(size, size, writable: false);
            try
            {
                new SegmentMemory(backing, size).Span(0, (int)size).CopyTo(copy);
            }
            finally
            {
                backing.Unmap();
            }
        }

        return copy;
    }

    private static void WaitForState(SegmentMemory? peek, Deadline deadline)
    {
        // Bounded slices: the creator may die while we sleep, and only a re-check of its liveness
        // (the lock the kernel drops) tells us.
        TimeSpan slice = deadline.Remaining(TimeSpan.FromMilliseconds(20));
        if (peek is not null)
        {
            ref int state = ref peek.Header.State;
            if (Volatile.Read(ref state) != SegmentHeader.StateReady)
            {
                PlatformServices.Futex.Wait(ref state, SegmentHeader.StateInitializing, slice);
            }
        }
        else
        {
            Thread.Sleep(Math.Max(1, (int)Math.Min(slice.TotalMilliseconds, 5)));
        }
    }

    /// <summary>Removes a dead creator's leftover, if this process can do so safely; the caller retries either way.</summary>
    private static void RemoveLeftover(SharedMemoryObject backing, long size)
    {
        backing.ReleaseAttachToken();
        backing.Unmap();
        if (backing.TryLockForRemoval() && backing.IsCurrent() && backing.QuerySize() == size)
        {
            backing.RemoveName();
        }
        else
        {
            // Other openers hold it too and will decide among themselves; step back a little so that
            // one of us gets the object alone.
            Thread.Sleep(Random.Shared.Next(1, 5));
        }
    }
}
