using SharedMemChannels.Channels;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Diagnostics;

/// <summary>
/// Reads segments without attaching to them, for monitoring and tools (<c>shmc list</c> and
/// <c>shmc inspect</c> use nothing else): a read-only mapping, no process-table slot, no lock, so that
/// looking at a segment never changes it, nor keeps alive a segment that should be removed on last detach.
/// </summary>
/// <remarks>
/// <para>
/// Everything read from shared memory is untrusted: a damaged or foreign object becomes a report whose
/// <see cref="SegmentReport.Status"/> says so, never an exception or a read outside the object. Only
/// the pages the backing object really has are mapped, so a truncated segment is reported as
/// <see cref="SegmentStatus.Damaged"/> rather than faulting the inspecting process.
/// </para>
/// <para>
/// Concurrent changes may give a torn picture (the heap and the directory are read without their locks).
/// A backing object truncated at the very moment it is being read can still fault the reader: no
/// process can guard a mapping against that (see the limits in the README).
/// </para>
/// </remarks>
public static class SegmentDiagnostics
{
    // The largest DateTimeOffset, in Unix milliseconds: anything beyond is a damaged time stamp.
    private const long MaxUnixMilliseconds = 253402300799999;

    /// <summary>Reports on every segment of this library, of both backends, ordered by backend and name.</summary>
    /// <returns>One report per segment; objects removed while the list is made are left out.</returns>
    /// <exception cref="PlatformNotSupportedException">Not on Linux x64 or arm64.</exception>
    public static IReadOnlyList<SegmentReport> List()
    {
        PlatformServices.EnsureSupported();
        var reports = new List<SegmentReport>();
        foreach (SharedMemoryBackend backend in Enum.GetValues<SharedMemoryBackend>())
        {
            foreach (string name in PlatformServices.GetProvider(backend).List().Order(StringComparer.Ordinal))
            {
                if (SharedName.IsValid(name) && TryInspect(name, backend) is { } report)
                {
                    reports.Add(report);
                }
            }
        }

        return reports;
    }

    /// <summary>Reports on the segment <paramref name="name"/>, looked for as POSIX, then as System V.</summary>
    /// <param name="name">The segment's name.</param>
    /// <returns>What the segment holds, or what is wrong with it.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid segment name.</exception>
    /// <exception cref="FileNotFoundException">There is no object of that name in either backend.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux x64 or arm64.</exception>
    public static SegmentReport Inspect(string name)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        foreach (SharedMemoryBackend backend in Enum.GetValues<SharedMemoryBackend>())
        {
            if (TryInspect(name, backend) is { } report)
            {
                return report;
            }
        }

        throw new FileNotFoundException($"No segment '{name}' ({PlatformServices.GetProvider(SharedMemoryBackend.Posix).Describe(name)}, nor System V).");
    }

    /// <summary>Reports on the segment <paramref name="name"/> of one backend.</summary>
    /// <param name="name">The segment's name.</param>
    /// <param name="backend">The facility to look in.</param>
    /// <returns>What the segment holds, or what is wrong with it.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid segment name.</exception>
    /// <exception cref="FileNotFoundException">There is no object of that name in that backend.</exception>
    /// <exception cref="PlatformNotSupportedException">Not on Linux x64 or arm64.</exception>
    public static SegmentReport Inspect(string name, SharedMemoryBackend backend)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        return TryInspect(name, backend)
            ?? throw new FileNotFoundException($"No segment '{name}' ({PlatformServices.GetProvider(backend).Describe(name)}).");
    }

    /// <summary>The report on one object, or null when there is no object of that name.</summary>
    private static SegmentReport? TryInspect(string name, SharedMemoryBackend backend)
    {
        SharedMemoryProvider provider = PlatformServices.GetProvider(backend);
        var report = new SegmentReport(name, backend, provider.Describe(name));
        SharedMemoryObject? backing;
        try
        {
            backing = provider.TryOpen(name, writable: false);
        }
        catch (UnauthorizedAccessException e)
        {
            return report with { Status = SegmentStatus.Inaccessible, Problem = e.Message };
        }
        catch (InvalidSegmentException e)
        {
            // A FIFO, a socket, a directory or a symbolic link of the name: not opened, never followed.
            return report with { Status = SegmentStatus.Foreign, Problem = e.Message };
        }

        if (backing is null)
        {
            return null;
        }

        using (backing)
        {
            return Read(backing, report);
        }
    }

    private static SegmentReport Read(SharedMemoryObject backing, SegmentReport report)
    {
        string name = report.Name;
        long size = backing.QuerySize();
        report = report with { ObjectSize = size, OwnerUserId = backing.QueryOwnerUid() };
        if (size == 0)
        {
            return report with { Status = SegmentStatus.Initializing, Problem = "empty: its creator died before sizing it, or is sizing it now." };
        }

        // A copy of the header, from a mapping of no more than the object has.
        byte[] copy = Copy(backing, (int)Math.Min(size, SegmentHeader.Size));
        if (copy.Length < SegmentHeader.Size)
        {
            return ShortObject(report, copy);
        }

        size = backing.QuerySize(); // after the header: never behind a capacity the header publishes
        report = report with { ObjectSize = size };
        HeaderKind kind = SegmentHeaderPeek.Classify(copy);
        switch (kind)
        {
            case HeaderKind.Empty:
                return report with { Status = SegmentStatus.Initializing, Problem = "uninitialized: its creator died before writing the header, or is writing it now." };
            case HeaderKind.Foreign:
                return report with { Status = SegmentStatus.Foreign, Problem = "not a SharedMemChannels segment." };
            case HeaderKind.OtherVersion:
                int version = (int)Math.Min(SegmentHeaderPeek.Version(copy), int.MaxValue);
                return report with { Status = SegmentStatus.OtherVersion, LayoutVersion = version, Problem = $"layout version {version}; this library reads version {SegmentHeader.CurrentVersion}." };
        }

        SegmentHeader header = SegmentHeaderPeek.Read(copy);
        report = WithHeader(report, header);
        if (kind == HeaderKind.Initializing)
        {
            return report with { Status = SegmentStatus.Initializing, Problem = "initializing, or its creator died while initializing it." };
        }

        try
        {
            header = SegmentHeaderPeek.ValidateHeader(copy, name, report.Backend);
        }
        catch (InvalidSegmentException e)
        {
            return report with { Status = SegmentStatus.Damaged, Problem = Reason(e, name) };
        }
        catch (IOException e)
        {
            // A System V key held by a segment of another name: not this segment at all.
            return WithHeader(report, default) with { Status = SegmentStatus.Foreign, Problem = e.Message };
        }

        string? problem = null;
        try
        {
            SegmentHeaderPeek.CheckObjectSize(header, name, size);
        }
        catch (InvalidSegmentException e)
        {
            problem = size < header.Capacity
                ? Reason(e, name) + " Attached processes die of SIGBUS when they touch the missing part."
                : Reason(e, name);
        }

        // Only the pages the object has: touching a page beyond its end would raise SIGBUS here too.
        // A segment that grows while we read is mapped further on demand, with the same check.
        long mapLength = Math.Min(header.Capacity, size / Environment.SystemPageSize * Environment.SystemPageSize);
        if (mapLength < SegmentLayout.HeapControlOffset)
        {
            // Not even the whole process table is there (capacity itself is validated to be larger).
            return report with { Status = SegmentStatus.Damaged, Problem = problem ?? $"the object has only {size} bytes." };
        }

        backing.Map(mapLength, header.MaxCapacity, writable: false);
        var memory = new SegmentMemory(backing, header.MaxCapacity);

        var table = new ProcessTable(memory);
        report = report with { Processes = [.. table.Snapshot().Select(ToReport)] };
        if (report.Processes.Any(p => p.State == ProcessSlotState.Invalid))
        {
            problem ??= "its process table holds a slot in an unknown state.";
        }

        if (size >= header.Capacity)
        {
            // The heap and the directory only when the object covers the whole capacity.
            try
            {
                report = report with { Heap = SharedHeap.Walk(memory, table) };
                report = report with { NamedObjects = ObjectDirectory.List(memory) };
                SharedHeap heap = SharedHeap.ForInspection(memory);
                report = report with
                {
                    Channels = ChannelInspector.Read(memory, report.NamedObjects, table, handle => ObjectDirectory.ValueOffsetOf(memory, heap, handle, TypeLayout<ChannelControl>.Info, "a channel control block")),
                };
                report = report with
                {
                    SyncObjects = Synchronization.SyncInspector.Read(memory, report.NamedObjects, table, handle => ObjectDirectory.ValueOffsetOf(memory, heap, handle, TypeLayout<Synchronization.SyncControl>.Info, "a synchronization control block")),
                };
                report = report with
                {
                    Topics = Topics.TopicInspector.Read(memory, report.NamedObjects, table, handle => ObjectDirectory.ValueOffsetOf(memory, heap, handle, TypeLayout<Topics.TopicControl>.Info, "a topic control block")),
                };
            }
            catch (Exception e) when (e is InvalidSegmentException or ArgumentException or InvalidOperationException or InvalidCastException or OverflowException)
            {
                problem ??= Reason(e, name);
            }
        }

        return report with { Status = problem is null ? SegmentStatus.Ready : SegmentStatus.Damaged, Problem = problem };
    }

    /// <summary>The first <paramref name="length"/> bytes of the object, through a mapping of exactly that many.</summary>
    private static byte[] Copy(SharedMemoryObject backing, int length)
    {
        backing.Map(length, SegmentHeader.Size, writable: false);
        try
        {
            var memory = new SegmentMemory(backing, SegmentHeader.Size);
            return memory.Span(0, (int)Math.Min(length, backing.MappedLength)).ToArray();
        }
        finally
        {
            backing.Unmap();
        }
    }

    /// <summary>An object smaller than a header: a truncated segment if it starts like one.</summary>
    private static SegmentReport ShortObject(SegmentReport report, byte[] bytes)
    {
        if (!bytes.AsSpan().ContainsAnyExcept((byte)0))
        {
            return report with { Status = SegmentStatus.Initializing, Problem = "uninitialized: its creator died before writing the header, or is writing it now." };
        }

        return bytes.Length >= sizeof(ulong) && BitConverter.ToUInt64(bytes) == SegmentHeader.MagicValue
            ? report with { Status = SegmentStatus.Damaged, Problem = $"it is truncated to {bytes.Length} bytes, less than its {SegmentHeader.Size}-byte header." }
            : report with { Status = SegmentStatus.Foreign, Problem = "not a segment (smaller than a header)." };
    }

    private static SegmentReport WithHeader(SegmentReport report, in SegmentHeader h) => report with
    {
        LayoutVersion = (int)Math.Min(h.LayoutVersion, int.MaxValue),
        Capacity = h.Capacity,
        MaxCapacity = h.MaxCapacity,
        InitialCapacity = h.InitialCapacity,
        Mode = (UnixFileMode)(h.Mode & 0xFFF),
        RemoveOnLastDetach = (h.Flags & SegmentHeader.FlagRemoveOnLastDetach) != 0,
        CreatorProcessId = h.CreatorPid,
        CreationTime = h.CreatedUnixMs <= 0 ? null : Time(h.CreatedUnixMs),
    };

    private static ProcessReport ToReport(ProcessSlotInfo slot) => new()
    {
        Slot = slot.Index,
        ProcessId = slot.Pid,
        Generation = slot.Generation,
        StartTime = slot.StartTime,
        AttachTime = slot.AttachedUnixMs <= 0 ? null : Time(slot.AttachedUnixMs),
        State = slot.State switch
        {
            ProcessSlot.Claiming => ProcessSlotState.Claiming,
            ProcessSlot.Live => ProcessSlotState.Attached,
            ProcessSlot.Reclaiming => ProcessSlotState.Reclaiming,
            _ => ProcessSlotState.Invalid,
        },
        Liveness = slot.Liveness switch
        {
            Liveness.Alive => ProcessLiveness.Alive,
            Liveness.Dead => ProcessLiveness.Dead,
            _ => ProcessLiveness.Unknown,
        },
    };

    /// <summary>An exception's message without the "Segment 'name': " the report already says.</summary>
    private static string Reason(Exception e, string name)
    {
        string prefix = $"Segment '{name}': ";
        return e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message;
    }

    private static DateTimeOffset Time(long unixMilliseconds) =>
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(unixMilliseconds, 0, MaxUnixMilliseconds));
}
