using SharedMemChannels.Heap;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>What <see cref="SegmentInspector"/> found in a segment.</summary>
internal sealed record SegmentReport
{
    public required string Name { get; init; }

    public required SharedMemoryBackend Backend { get; init; }

    public required string Location { get; init; }

    public long ObjectSize { get; init; }

    public uint OwnerUid { get; init; }

    /// <summary>Why the segment could not be read, or null when it could.</summary>
    public string? Error { get; init; }

    public uint LayoutVersion { get; init; }

    public bool Ready { get; init; }

    public long Capacity { get; init; }

    public long MaxCapacity { get; init; }

    public long InitialCapacity { get; init; }

    public uint Mode { get; init; }

    public bool RemoveOnLastDetach { get; init; }

    public int CreatorPid { get; init; }

    public DateTimeOffset Created { get; init; }

    public IReadOnlyList<ProcessSlotInfo> Processes { get; init; } = [];

    public int LiveProcesses => Processes.Count(p => p.Liveness != Liveness.Dead);

    public HeapStatistics? Heap { get; init; }

    public string? HeapError { get; init; }

    public IReadOnlyList<NamedObjectInfo> Objects { get; init; } = [];
}

/// <summary>
/// Reads a segment without attaching to it: a read-only mapping, no process-table slot, no lock, so that
/// looking at a segment never changes it (nor keeps a segment alive that should be removed on last
/// detach). Concurrent changes may give a torn picture; every value read is still checked.
/// </summary>
internal static class SegmentInspector
{
    /// <summary>Every segment of this library, of both backends.</summary>
    public static List<SegmentReport> List(bool includeHeap)
    {
        PlatformServices.EnsureSupported();
        var reports = new List<SegmentReport>();
        foreach (SharedMemoryBackend backend in Enum.GetValues<SharedMemoryBackend>())
        {
            foreach (string name in PlatformServices.GetProvider(backend).List())
            {
                SegmentReport? report = Inspect(name, backend, includeHeap);
                if (report is not null)
                {
                    reports.Add(report);
                }
            }
        }

        return reports;
    }

    /// <summary>Inspects one segment; null when there is no such segment.</summary>
    public static SegmentReport? Inspect(string name, SharedMemoryBackend backend, bool includeHeap)
    {
        SharedName.Validate(name, nameof(name));
        PlatformServices.EnsureSupported();
        SharedMemoryProvider provider = PlatformServices.GetProvider(backend);
        SharedMemoryObject? backing;
        try
        {
            backing = provider.TryOpen(name, writable: false);
        }
        catch (UnauthorizedAccessException e)
        {
            return new SegmentReport { Name = name, Backend = backend, Location = provider.Describe(name), Error = e.Message };
        }

        if (backing is null)
        {
            return null;
        }

        using (backing)
        {
            long size = backing.QuerySize();
            var report = new SegmentReport { Name = name, Backend = backend, Location = provider.Describe(name), ObjectSize = size, OwnerUid = backing.QueryOwnerUid() };
            if (size < SegmentHeader.Size)
            {
                return report with { Error = size == 0 ? "empty: its creator died before sizing it" : "not a segment (smaller than a header)" };
            }

            backing.Map(SegmentHeader.Size, SegmentHeader.Size, writable: false);
            byte[] copy = new SegmentMemory(backing, SegmentHeader.Size).Span(0, SegmentHeader.Size).ToArray();
            backing.Unmap();
            size = backing.QuerySize(); // after the header: never behind a capacity the header publishes
            report = report with { ObjectSize = size };
            HeaderKind kind = SegmentHeaderPeek.Classify(copy);
            switch (kind)
            {
                case HeaderKind.Empty:
                    return report with { Error = "uninitialized: its creator died before writing the header" };
                case HeaderKind.Foreign:
                    return report with { Error = "not a SharedMemChannels segment" };
                case HeaderKind.OtherVersion:
                    return report with { Error = $"layout version {SegmentHeaderPeek.Version(copy)}, not {SegmentHeader.CurrentVersion}", LayoutVersion = SegmentHeaderPeek.Version(copy) };
            }

            SegmentHeader header;
            try
            {
                header = kind == HeaderKind.Ready
                    ? SegmentHeaderPeek.Validate(copy, name, size, backend)
                    : System.Runtime.InteropServices.MemoryMarshal.Read<SegmentHeader>(copy);
            }
            catch (Exception e) when (e is InvalidSegmentException or IOException)
            {
                return report with { Error = e.Message, LayoutVersion = SegmentHeader.CurrentVersion };
            }

            report = report with
            {
                LayoutVersion = header.LayoutVersion,
                Ready = kind == HeaderKind.Ready,
                Capacity = header.Capacity,
                MaxCapacity = header.MaxCapacity,
                InitialCapacity = header.InitialCapacity,
                Mode = header.Mode,
                RemoveOnLastDetach = (header.Flags & SegmentHeader.FlagRemoveOnLastDetach) != 0,
                CreatorPid = header.CreatorPid,
                Created = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(header.CreatedUnixMs, 0, 253402300799999)),
            };
            if (kind != HeaderKind.Ready)
            {
                return report with { Error = "initializing (or its creator died while initializing)" };
            }

            // The whole segment, in a reservation of its maximum: if it grows while we read, the new
            // part is mapped on demand like in any attached process.
            backing.Map(header.Capacity, header.MaxCapacity, writable: false);
            var memory = new SegmentMemory(backing, header.MaxCapacity);

            var table = new ProcessTable(memory);
            report = report with { Processes = table.Snapshot() };
            if (!includeHeap)
            {
                return report;
            }

            try
            {
                report = report with
                {
                    Heap = SharedHeap.Walk(memory, table),
                    Objects = Objects.ObjectDirectory.List(memory),
                };
            }
            catch (InvalidSegmentException e)
            {
                report = report with { HeapError = e.Message };
            }

            return report;
        }
    }
}
