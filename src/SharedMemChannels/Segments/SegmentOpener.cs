using System.Text;
using SharedMemChannels.Common;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>What a <see cref="SegmentOpener"/> is asked to do.</summary>
internal enum OpenMode
{
    /// <summary>Make a new segment; fail if one of the name exists.</summary>
    Create,

    /// <summary>Attach to an existing segment; never create, never remove.</summary>
    Open,

    /// <summary>Attach, or create when there is none.</summary>
    OpenOrCreate,
}

/// <summary>
/// The create / open / attach protocol of a segment (docs/design.md, "Creation and opening"): picks
/// one creator among racing processes, refuses objects of another user, waits for a creator that is
/// still initializing, tells a dead creator's leftover from a live creator's work and from a foreign
/// object, and checks a header before anything of it is used. One instance serves one call; the
/// static members are the entry points.
/// </summary>
/// <remarks>
/// A leftover is removed only when all of these hold: the caller creates (never <see cref="OpenMode.Open"/>);
/// the object is the caller's (its uid); its size is one our creator makes (0, or whole pages of at
/// least <see cref="SegmentOptions.MinCapacity"/>); its content is what our creator leaves (all zero,
/// since the magic is written first, or a header still initializing); and no creator can be alive
/// (POSIX: nobody holds the lock exclusively; System V: the creator recorded in the header, or by
/// the kernel, is dead). Everything else is reported, never removed.
/// </remarks>
internal sealed class SegmentOpener
{
    /// <summary>How many bytes are checked at a time when an object must be all zero.</summary>
    private const int ScanChunk = 1 << 20;

    private readonly string _name;
    private readonly SegmentOptions _options;
    private readonly OpenMode _mode;
    private readonly SharedMemoryProvider _provider;
    private readonly Deadline _deadline;
    private int _emptyStrikes;

    private SegmentOpener(string name, SegmentOptions options, OpenMode mode)
    {
        _name = name;
        _options = options;
        _mode = mode;
        _provider = PlatformServices.GetProvider(options.Backend);
        _deadline = Deadline.After(options.OpenTimeout);
    }

    private enum AttachOutcome
    {
        Attached,
        Retry,
    }

    /// <summary>Creates, opens, or opens-or-creates the segment <paramref name="name"/>.</summary>
    /// <param name="name">The segment's name (validated here).</param>
    /// <param name="options">The caller's options; the opener keeps its own copy.</param>
    /// <param name="mode">What to do.</param>
    public static OpenedSegment Open(string name, SegmentOptions options, OpenMode mode)
    {
        ArgumentNullException.ThrowIfNull(options);
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        options = options.Clone();
        if (mode != OpenMode.Open)
        {
            options.ValidateForCreate();
        }

        return new SegmentOpener(name, options, mode).Run();
    }

    /// <summary>Opens an existing segment with default options, POSIX first, then System V.</summary>
    public static OpenedSegment Open(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        var options = new SegmentOptions();
        if (!PlatformServices.GetProvider(SharedMemoryBackend.Posix).Exists(name) &&
            PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Exists(name))
        {
            options.Backend = SharedMemoryBackend.SystemV;
        }

        return new SegmentOpener(name, options, OpenMode.Open).Run();
    }

    /// <summary>Whether an object of that name exists with either backend.</summary>
    public static bool Exists(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(SharedMemoryBackend.Posix).Exists(name) ||
               PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Exists(name);
    }

    /// <summary>Whether an object of that name exists with <paramref name="backend"/>.</summary>
    public static bool Exists(string name, SharedMemoryBackend backend)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(backend).Exists(name);
    }

    /// <summary>Removes the name from both backends; false when neither had it.</summary>
    public static bool Remove(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        bool posix = PlatformServices.GetProvider(SharedMemoryBackend.Posix).Remove(name);
        bool systemV = PlatformServices.GetProvider(SharedMemoryBackend.SystemV).Remove(name);
        return posix || systemV;
    }

    /// <summary>Removes the name from <paramref name="backend"/>; false when there was none.</summary>
    public static bool Remove(string name, SharedMemoryBackend backend)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return PlatformServices.GetProvider(backend).Remove(name);
    }

    private OpenedSegment Run()
    {
        while (true)
        {
            if (_mode != OpenMode.Open)
            {
                OpenedSegment? created = TryCreateNew();
                if (created is not null)
                {
                    return created.Value;
                }
            }

            SharedMemoryObject? existing = _provider.TryOpen(_name, writable: true);
            if (existing is null)
            {
                if (_mode == OpenMode.Open)
                {
                    throw new FileNotFoundException($"There is no segment '{_name}' ({_provider.Describe(_name)}).", _provider.Describe(_name));
                }

                continue; // removed between our create and our open: create again
            }

            bool ownedByCaller = CheckOwner(existing);
            if (TryAttach(existing, ownedByCaller, out OpenedSegment attached) == AttachOutcome.Attached)
            {
                return attached;
            }

            if (_deadline.HasExpired)
            {
                throw new TimeoutException($"Segment '{_name}' did not become ready within {_options.OpenTimeout}.");
            }
        }
    }

    /// <summary>
    /// Refuses (and disposes) an object of another user unless the caller opted in; returns whether
    /// the object is the caller's own. Done before anything of the object is read: its owner may write
    /// anything in it, and may keep a lock on it to make us wait.
    /// </summary>
    private bool CheckOwner(SharedMemoryObject existing)
    {
        bool owned;
        uint owner;
        try
        {
            owned = existing.IsOwnedByCaller(out owner);
        }
        catch
        {
            existing.Dispose();
            throw;
        }

        if (!owned && !_options.AllowForeignOwner)
        {
            existing.Dispose();
            ThrowHelper.ThrowUnauthorized(
                $"Segment '{_name}' ({_provider.Describe(_name)}) belongs to user {owner}, not to this process's user; " +
                "another user may have made the name first. Set SegmentOptions.AllowForeignOwner to share segments between users on purpose.");
        }

        return owned;
    }

    /// <summary>
    /// Creates and initializes a new segment, or returns null when the name is taken (or our new object
    /// was removed by a peer that took it for a dead creator's leftover; the caller starts over).
    /// </summary>
    private OpenedSegment? TryCreateNew()
    {
        long capacity = SegmentOptions.RoundToPage(_options.Capacity);
        long maxCapacity = SegmentOptions.RoundToPage(_options.MaxCapacity);
        SharedMemoryObject? backing = _provider.TryCreate(_name, capacity, _options.UnixFileMode);
        if (backing is null)
        {
            return null;
        }

        try
        {
            backing.Extend(capacity);
            backing.Map(capacity, maxCapacity, writable: true);
            backing.Populate();
            var memory = new SegmentMemory(backing, maxCapacity);
            WriteHeader(memory, capacity, maxCapacity);
            Heap.SharedHeap.Initialize(memory);
            ref SegmentHeader header = ref memory.Header;
            header.Checksum = SegmentHeaderPeek.ComputeChecksum(memory.Span(0, SegmentHeader.Size));

            SegmentTestHooks.BeforeReady?.Invoke(_name);

            Volatile.Write(ref header.State, SegmentHeader.StateReady);
            PlatformServices.Futex.Wake(ref header.State, int.MaxValue);
            backing.DowngradeToAttachToken();
            if (!backing.IsCurrent())
            {
                backing.Dispose();
                return null;
            }

            return new OpenedSegment(backing, memory, _provider.Kind, Created: true);
        }
        catch
        {
            try
            {
                backing.RemoveName();
            }
            finally
            {
                backing.Dispose();
            }

            throw;
        }
    }

    private void WriteHeader(SegmentMemory memory, long capacity, long maxCapacity)
    {
        ref SegmentHeader header = ref memory.Header;
        ProcessIdentity me = PlatformServices.Processes.Current;

        // The magic first, with one 8-byte store, while the rest is still zero (state "initializing"):
        // an opener that can look while we work (System V has no lock to keep it out) then sees either
        // all zeros or our magic, never a half-written header it would take for a foreign object.
        Volatile.Write(ref header.State, SegmentHeader.StateInitializing);
        Volatile.Write(ref header.Magic, SegmentHeader.MagicValue);
        // A full fence, not just the release above: no later store of ours (the heap, the process
        // table) may become visible before the magic, so data beyond a header still all zero is
        // never ours (ScanBeyondHeader relies on it).
        Interlocked.MemoryBarrier();
        header.CreatorPid = me.Pid;
        header.CreatorStartTime = me.StartTime;
        header.CreatorPidNamespace = me.PidNamespace;
        header.HeaderSize = SegmentHeader.Size;
        header.LayoutVersion = SegmentHeader.CurrentVersion;

        header.Flags = _options.RemoveOnLastDetach ? SegmentHeader.FlagRemoveOnLastDetach : 0;
        header.MaxCapacity = maxCapacity;
        header.InitialCapacity = capacity;
        header.Mode = (uint)_options.UnixFileMode;
        header.CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        header.ProcessTableOffset = SegmentLayout.ProcessTableOffset;
        header.ProcessTableSlots = SegmentLayout.ProcessTableSlots;
        header.HeapControlOffset = SegmentLayout.HeapControlOffset;
        header.HeapStart = SegmentLayout.HeapStart;
        header.Backend = (uint)_provider.Kind;
        Span<byte> nameField = memory.Span(SegmentHeader.NameOffset, SegmentHeader.NameCapacity);
        nameField.Clear();
        header.NameLength = (uint)Encoding.UTF8.GetBytes(_name, nameField);
        Volatile.Write(ref header.Capacity, capacity);
    }

    /// <summary>
    /// Attaches to an existing object, waiting while its creator initializes it. Takes ownership of
    /// <paramref name="backing"/>: on every outcome but success it is disposed.
    /// </summary>
    private AttachOutcome TryAttach(SharedMemoryObject backing, bool ownedByCaller, out OpenedSegment attached)
    {
        attached = default;
        SegmentMemory? peek = null;
        bool keep = false;
        long scannedSize = -1;
        try
        {
            while (!_deadline.HasExpired)
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
                    SegmentTestHooks.OnWaitingForCreator(_name);
                    WaitForState(peek);
                    continue;
                }

                long size = backing.QuerySize();
                peek ??= TryMapHeader(backing);
                byte[] copy = CopyHeader(peek, backing, size);
                HeaderKind kind = ClassifyObject(copy, size);
                if (kind == HeaderKind.Empty && size > 0 && scannedSize != size)
                {
                    // No header yet: our creator leaves the rest all zero too. Checked once, before we
                    // wait on a creator or judge a leftover, so that a foreign object whose first page
                    // happens to be zero is never taken for ours.
                    backing.Unmap();
                    peek = null;
                    Scan scan = ScanBeyondHeader(backing, size);
                    if (scan == Scan.HeaderWritten)
                    {
                        continue;
                    }

                    kind = scan == Scan.DataBeyond ? HeaderKind.Foreign : kind;
                    scannedSize = size;
                }

                switch (kind)
                {
                    case HeaderKind.Foreign:
                        return ThrowHelper.ThrowDamaged<AttachOutcome>(
                            _name, $"{_provider.Describe(_name)} is not a SharedMemChannels segment (unknown header, or a size or content this library never makes); it is left alone.");

                    case HeaderKind.OtherVersion:
                        return ThrowHelper.ThrowDamaged<AttachOutcome>(
                            _name, $"it has layout version {SegmentHeaderPeek.Version(copy)}; this library reads version {SegmentHeader.CurrentVersion}.");

                    case HeaderKind.Empty or HeaderKind.Initializing:
                        ProcessIdentity creator = kind == HeaderKind.Initializing ? SegmentHeaderPeek.Creator(copy) : default;
                        if (backing.InitializerMayBeAlive(creator))
                        {
                            SegmentTestHooks.OnWaitingForCreator(_name);
                            WaitForState(peek);
                            continue;
                        }

                        if (size == 0 && _provider.Kind == SharedMemoryBackend.Posix && ++_emptyStrikes <= 3)
                        {
                            // An empty object whose creator we cannot see may be one that has just
                            // called shm_open and not yet taken its lock. Give it a moment.
                            backing.ReleaseAttachToken();
                            Thread.Sleep(_emptyStrikes);
                            continue;
                        }

                        // No creator is alive: a leftover of a creator that died. Only a creating caller
                        // replaces it, and only its own.
                        string what = size == 0 ? "an empty object" : kind == HeaderKind.Empty ? "no header yet" : "its header still initializing";
                        if (_mode == OpenMode.Open)
                        {
                            ThrowHelper.ThrowDamaged(
                                _name, $"its creator died before finishing it ({what}). Open leaves it as it is: Create or OpenOrCreate replace such a leftover, SharedSegment.Remove removes it.");
                        }

                        if (!ownedByCaller)
                        {
                            ThrowHelper.ThrowDamaged(
                                _name, $"its creator died before finishing it ({what}), and it belongs to another user (uid {backing.QueryOwnerUid()}): it is not removed. Remove it as that user.");
                        }

                        peek = null;
                        RemoveLeftover(backing, size);
                        return AttachOutcome.Retry;

                    default:
                        // The size again, read after the header: growth reserves the pages before it
                        // publishes the new capacity, so this size is never behind the copied header.
                        SegmentHeader header = SegmentHeaderPeek.Validate(copy, _name, backing.QuerySize(), _provider.Kind);
                        if (_mode != OpenMode.Open && ownedByCaller && (header.Flags & SegmentHeader.FlagRemoveOnLastDetach) != 0)
                        {
                            if (backing.TryBecomeSole())
                            {
                                // Meant to vanish with its last user, and nobody alive is attached: a
                                // leftover of processes that all died. Replace it, unless it holds
                                // channels, whose items may be committed data nobody has read yet (the
                                // count is read again now that nobody else can attach and change it):
                                // then attach to it as to a live one.
                                if (SegmentHeaderPeek.Read(CopyHeader(peek, backing, size)).ChannelCount != 0)
                                {
                                    backing.DowngradeToAttachToken();
                                }
                                else
                                {
                                    if (backing.IsCurrent())
                                    {
                                        backing.RemoveName();
                                    }

                                    return AttachOutcome.Retry;
                                }
                            }
                            else if (!backing.TryAcquireAttachToken())
                            {
                                continue;
                            }
                        }

                        if (!backing.IsCurrent())
                        {
                            return AttachOutcome.Retry;
                        }

                        if (_mode == OpenMode.Create)
                        {
                            throw new IOException($"Segment '{_name}' already exists ({_provider.Describe(_name)}).");
                        }

                        backing.Unmap();
                        peek = null;
                        backing.Map(header.Capacity, header.MaxCapacity, writable: true);
                        attached = new OpenedSegment(backing, new SegmentMemory(backing, header.MaxCapacity), _provider.Kind, Created: false);
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

    /// <summary>
    /// What the object is, by its size and header. Our creators size the object to its full capacity
    /// in one call before writing anything: a header-less or initializing object of any other size
    /// than 0 or a possible capacity was made by something else.
    /// </summary>
    private static HeaderKind ClassifyObject(byte[] copy, long size)
    {
        if (size == 0)
        {
            return HeaderKind.Empty;
        }

        if (size < SegmentHeader.Size)
        {
            return HeaderKind.Foreign;
        }

        HeaderKind kind = SegmentHeaderPeek.Classify(copy);
        return kind is HeaderKind.Empty or HeaderKind.Initializing && !IsSizeOurCreatorMakes(size) ? HeaderKind.Foreign : kind;
    }

    /// <summary>Whether a creator of this library sizes an object so: whole pages, within the capacity limits.</summary>
    private static bool IsSizeOurCreatorMakes(long size) =>
        size % Environment.SystemPageSize == 0 && size >= SegmentOptions.MinCapacity && size <= SegmentOptions.MaxSupportedCapacity;

    private enum Scan
    {
        /// <summary>The header and everything after it are zero.</summary>
        AllZero,

        /// <summary>The header is zero but something after it is not: not written by our creator.</summary>
        DataBeyond,

        /// <summary>The header is no longer zero: a creator is at work; classify again.</summary>
        HeaderWritten,
    }

    /// <summary>Reads the whole object (unmapped on entry and on return) for data beyond a header of zeros.</summary>
    private static Scan ScanBeyondHeader(SharedMemoryObject backing, long size)
    {
        backing.Map(size, size, writable: false);
        try
        {
            var whole = new SegmentMemory(backing, size);
            bool dataBeyond = HasDataBeyondHeader(whole, size);
            // Our creator fences after its magic (WriteHeader): if the data seen above were its own,
            // the magic would be visible now.
            Interlocked.MemoryBarrier();
            if (whole.Span(0, SegmentHeader.Size).ContainsAnyExcept((byte)0))
            {
                return Scan.HeaderWritten;
            }

            return dataBeyond ? Scan.DataBeyond : Scan.AllZero;
        }
        finally
        {
            backing.Unmap();
        }
    }

    private static bool HasDataBeyondHeader(SegmentMemory whole, long size)
    {
        for (long offset = SegmentHeader.Size; offset < size; offset += ScanChunk)
        {
            if (whole.Span(offset, (int)Math.Min(ScanChunk, size - offset)).ContainsAnyExcept((byte)0))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether the object still is exactly what a dead creator of ours leaves (checked again by the
    /// process about to remove it, holding the object alone where the facility allows).
    /// </summary>
    private static bool IsStillALeftoverOfOurs(SharedMemoryObject backing, long size)
    {
        if (backing.QuerySize() != size || !backing.IsOwnedByCaller(out _))
        {
            return false;
        }

        if (size == 0)
        {
            return true;
        }

        if (!IsSizeOurCreatorMakes(size))
        {
            return false;
        }

        backing.Map(size, size, writable: false);
        try
        {
            var whole = new SegmentMemory(backing, size);
            HeaderKind kind = SegmentHeaderPeek.Classify(whole.Span(0, SegmentHeader.Size));
            return kind == HeaderKind.Initializing || (kind == HeaderKind.Empty && !HasDataBeyondHeader(whole, size));
        }
        finally
        {
            backing.Unmap();
        }
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

    private void WaitForState(SegmentMemory? peek)
    {
        // Bounded slices: the creator may die while we sleep, and only a re-check of its liveness
        // (the lock the kernel drops) tells us.
        TimeSpan slice = _deadline.Remaining(TimeSpan.FromMilliseconds(20));
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
        if (backing.TryLockForRemoval() && backing.IsCurrent() && IsStillALeftoverOfOurs(backing, size))
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
