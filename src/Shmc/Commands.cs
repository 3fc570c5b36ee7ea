using System.Globalization;
using System.Text;
using System.Text.Json;
using SharedMemChannels;
using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace Shmc;

/// <summary>The list, inspect and remove commands.</summary>
internal static class Commands
{
    public static int List(CommandLine command)
    {
        if (command.Positional.Count != 0)
        {
            throw new ArgumentException("list takes no arguments");
        }

        List<SegmentReport> reports = SegmentInspector.List(includeHeap: false);
        if (command.Json)
        {
            WriteJson(writer =>
            {
                writer.WriteStartArray();
                foreach (SegmentReport report in reports)
                {
                    WriteSummary(writer, report);
                }

                writer.WriteEndArray();
            });
            return Program.ExitOk;
        }

        if (reports.Count == 0)
        {
            Console.WriteLine("No SharedMemChannels segments.");
            return Program.ExitOk;
        }

        var table = new TextTable("NAME", "BACKEND", "CAPACITY", "MAPPED", "MAX", "LIVE", "VERSION", "STATE");
        foreach (SegmentReport r in reports)
        {
            table.Add(
                r.Name,
                BackendName(r.Backend),
                r.Error is null ? Bytes(r.Capacity) : "-",
                Bytes(r.ObjectSize),
                r.Error is null ? Bytes(r.MaxCapacity) : "-",
                r.Error is null ? r.LiveProcesses.ToString(CultureInfo.InvariantCulture) : "-",
                r.LayoutVersion == 0 ? "-" : r.LayoutVersion.ToString(CultureInfo.InvariantCulture),
                r.Error ?? "ready");
        }

        table.Write(Console.Out);
        return Program.ExitOk;
    }

    public static int Inspect(CommandLine command)
    {
        string name = command.SingleName("inspect");
        SharedMemoryBackend? backend = command.Backend;
        SegmentReport? report = null;
        foreach (SharedMemoryBackend candidate in backend is { } b ? [b] : Enum.GetValues<SharedMemoryBackend>())
        {
            report = SegmentInspector.Inspect(name, candidate, includeHeap: true);
            if (report is not null)
            {
                break;
            }
        }

        if (report is null)
        {
            return Program.Fail($"no segment '{name}'", Program.ExitFailed);
        }

        if (command.Json)
        {
            WriteJson(writer => WriteDetail(writer, report));
        }
        else
        {
            WriteDetailText(report);
        }

        return report.Error is null ? Program.ExitOk : Program.ExitFailed;
    }

    public static int Remove(CommandLine command)
    {
        string name = command.SingleName("remove");
        bool removed = command.Backend is { } backend ? SharedSegment.Remove(name, backend) : SharedSegment.Remove(name);
        if (!removed)
        {
            return Program.Fail($"no segment '{name}'", Program.ExitFailed);
        }

        Console.WriteLine($"Removed segment '{name}'.");
        return Program.ExitOk;
    }

    private static void WriteDetailText(SegmentReport r)
    {
        var header = new TextTable("FIELD", "VALUE");
        header.Add("name", r.Name);
        header.Add("backend", BackendName(r.Backend));
        header.Add("location", r.Location);
        header.Add("object size", Bytes(r.ObjectSize));
        header.Add("owner uid", r.OwnerUid.ToString(CultureInfo.InvariantCulture));
        if (r.Error is not null)
        {
            header.Add("error", r.Error);
        }

        if (r.LayoutVersion != 0)
        {
            header.Add("layout version", r.LayoutVersion.ToString(CultureInfo.InvariantCulture));
        }

        if (r.Capacity != 0)
        {
            header.Add("state", r.Ready ? "ready" : "initializing");
            header.Add("capacity", Bytes(r.Capacity));
            header.Add("max capacity", Bytes(r.MaxCapacity));
            header.Add("initial capacity", Bytes(r.InitialCapacity));
            header.Add("mode", "0" + Convert.ToString(r.Mode, 8));
            header.Add("remove on last detach", r.RemoveOnLastDetach ? "yes" : "no");
            header.Add("creator pid", r.CreatorPid.ToString(CultureInfo.InvariantCulture));
            header.Add("created", r.Created.ToString("u", CultureInfo.InvariantCulture));
        }

        header.Write(Console.Out);
        if (r.Error is not null)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"Processes ({r.LiveProcesses} live of {r.Processes.Count} slots in use):");
        var processes = new TextTable("SLOT", "PID", "GEN", "STATE", "ALIVE", "ATTACHED");
        foreach (ProcessSlotInfo p in r.Processes)
        {
            processes.Add(
                p.Index.ToString(CultureInfo.InvariantCulture),
                p.Pid.ToString(CultureInfo.InvariantCulture),
                p.Generation.ToString(CultureInfo.InvariantCulture),
                SlotState(p.State),
                LivenessName(p.Liveness),
                DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(p.AttachedUnixMs, 0, 253402300799999)).ToString("u", CultureInfo.InvariantCulture));
        }

        processes.Write(Console.Out);
        Console.WriteLine();
        if (r.Heap is null)
        {
            Console.WriteLine($"Heap: {r.HeapError ?? "not read"}");
            return;
        }

        HeapStatistics h = r.Heap;
        Console.WriteLine("Heap:");
        var heap = new TextTable("FIELD", "VALUE");
        heap.Add("capacity", Bytes(h.Capacity));
        heap.Add("used", $"{Bytes(h.UsedBytes)} in {h.AllocatedBlocks} blocks");
        heap.Add("cached", $"{Bytes(h.CachedBytes)} in {h.CachedBlocks} blocks");
        heap.Add("free", $"{Bytes(h.FreeBytes)} in {h.FreeBlocks} blocks");
        heap.Add("largest free block", Bytes(h.LargestFreeBlock));
        heap.Add("blocks", h.BlockCount.ToString(CultureInfo.InvariantCulture));
        heap.Add("recoveries", h.Recoveries.ToString(CultureInfo.InvariantCulture));
        heap.Add("dead processes reclaimed", h.Reclaims.ToString(CultureInfo.InvariantCulture));
        heap.Write(Console.Out);
        if (h.ThreadCaches.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("Per-thread caches:");
            var caches = new TextTable("PID", "SLOT", "THREAD", "BLOCKS", "BYTES");
            foreach (ThreadCacheStatistics c in h.ThreadCaches)
            {
                caches.Add(
                    c.ProcessId == 0 ? "?" : c.ProcessId.ToString(CultureInfo.InvariantCulture),
                    c.ProcessSlot.ToString(CultureInfo.InvariantCulture),
                    c.ThreadId.ToString(CultureInfo.InvariantCulture),
                    c.Blocks.ToString(CultureInfo.InvariantCulture),
                    Bytes(c.Bytes));
            }

            caches.Write(Console.Out);
        }

        Console.WriteLine();
        Console.WriteLine($"Named objects ({r.Objects.Count}):");
        if (r.Objects.Count > 0)
        {
            var objects = new TextTable("NAME", "TYPE", "SIZE", "HANDLE");
            foreach (NamedObjectInfo o in r.Objects)
            {
                objects.Add(o.Name, o.TypeName, o.Size.ToString(CultureInfo.InvariantCulture), o.Handle.Value.ToString(CultureInfo.InvariantCulture));
            }

            objects.Write(Console.Out);
        }
    }

    private static void WriteSummary(Utf8JsonWriter w, SegmentReport r)
    {
        w.WriteStartObject();
        w.WriteString("name", r.Name);
        w.WriteString("backend", BackendName(r.Backend));
        w.WriteString("location", r.Location);
        w.WriteNumber("capacity", r.Capacity);
        w.WriteNumber("mappedSize", r.ObjectSize);
        w.WriteNumber("maxCapacity", r.MaxCapacity);
        w.WriteNumber("liveProcesses", r.LiveProcesses);
        w.WriteNumber("layoutVersion", r.LayoutVersion);
        w.WriteString("state", r.Error is null ? "ready" : "error");
        if (r.Error is not null)
        {
            w.WriteString("error", r.Error);
        }

        w.WriteEndObject();
    }

    private static void WriteDetail(Utf8JsonWriter w, SegmentReport r)
    {
        w.WriteStartObject();
        w.WriteString("name", r.Name);
        w.WriteString("backend", BackendName(r.Backend));
        w.WriteString("location", r.Location);
        w.WriteNumber("objectSize", r.ObjectSize);
        w.WriteNumber("ownerUid", r.OwnerUid);
        w.WriteNumber("layoutVersion", r.LayoutVersion);
        w.WriteString("state", r.Error is null ? "ready" : "error");
        if (r.Error is not null)
        {
            w.WriteString("error", r.Error);
            w.WriteEndObject();
            return;
        }

        w.WriteNumber("capacity", r.Capacity);
        w.WriteNumber("maxCapacity", r.MaxCapacity);
        w.WriteNumber("initialCapacity", r.InitialCapacity);
        w.WriteString("mode", "0" + Convert.ToString(r.Mode, 8));
        w.WriteBoolean("removeOnLastDetach", r.RemoveOnLastDetach);
        w.WriteNumber("creatorPid", r.CreatorPid);
        w.WriteString("created", r.Created);
        w.WriteNumber("liveProcesses", r.LiveProcesses);
        w.WriteStartArray("processes");
        foreach (ProcessSlotInfo p in r.Processes)
        {
            w.WriteStartObject();
            w.WriteNumber("slot", p.Index);
            w.WriteNumber("pid", p.Pid);
            w.WriteNumber("generation", p.Generation);
            w.WriteString("state", SlotState(p.State));
            w.WriteString("alive", LivenessName(p.Liveness));
            w.WriteNumber("startTime", p.StartTime);
            w.WriteString("attached", DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(p.AttachedUnixMs, 0, 253402300799999)));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        if (r.Heap is { } h)
        {
            w.WriteStartObject("heap");
            w.WriteNumber("capacity", h.Capacity);
            w.WriteNumber("usedBytes", h.UsedBytes);
            w.WriteNumber("cachedBytes", h.CachedBytes);
            w.WriteNumber("freeBytes", h.FreeBytes);
            w.WriteNumber("largestFreeBlock", h.LargestFreeBlock);
            w.WriteNumber("blocks", h.BlockCount);
            w.WriteNumber("allocatedBlocks", h.AllocatedBlocks);
            w.WriteNumber("cachedBlocks", h.CachedBlocks);
            w.WriteNumber("freeBlocks", h.FreeBlocks);
            w.WriteNumber("recoveries", h.Recoveries);
            w.WriteNumber("reclaims", h.Reclaims);
            w.WriteStartArray("threadCaches");
            foreach (ThreadCacheStatistics c in h.ThreadCaches)
            {
                w.WriteStartObject();
                w.WriteNumber("pid", c.ProcessId);
                w.WriteNumber("slot", c.ProcessSlot);
                w.WriteNumber("thread", c.ThreadId);
                w.WriteNumber("blocks", c.Blocks);
                w.WriteNumber("bytes", c.Bytes);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteString("heapError", r.HeapError);
        }

        w.WriteStartArray("objects");
        foreach (NamedObjectInfo o in r.Objects)
        {
            w.WriteStartObject();
            w.WriteString("name", o.Name);
            w.WriteString("type", o.TypeName);
            w.WriteNumber("size", o.Size);
            w.WriteString("layout", o.LayoutFingerprint.ToString("x16", CultureInfo.InvariantCulture));
            w.WriteNumber("handle", o.Handle.Value);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteJson(Action<Utf8JsonWriter> write)
    {
        using Stream stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            write(writer);
        }

        stdout.Write("\n"u8);
    }

    private static string BackendName(SharedMemoryBackend backend) => backend == SharedMemoryBackend.Posix ? "posix" : "sysv";

    private static string SlotState(int state) => state switch
    {
        ProcessSlot.Claiming => "claiming",
        ProcessSlot.Live => "attached",
        ProcessSlot.Reclaiming => "reclaiming",
        _ => "free",
    };

    private static string LivenessName(Liveness liveness) => liveness switch
    {
        Liveness.Alive => "yes",
        Liveness.Dead => "DEAD",
        _ => "unknown (other pid namespace)",
    };

    internal static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {units[unit]}");
    }
}

/// <summary>A plain text table with aligned columns.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells) => _rows.Add(cells);

    public void Write(TextWriter output)
    {
        int[] widths = headers.Select(h => h.Length).ToArray();
        foreach (string[] row in _rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        output.WriteLine(Line(headers, widths));
        foreach (string[] row in _rows)
        {
            output.WriteLine(Line(row, widths));
        }
    }

    private static string Line(string[] cells, int[] widths)
    {
        var line = new StringBuilder();
        for (int i = 0; i < cells.Length; i++)
        {
            line.Append(i == cells.Length - 1 ? cells[i] : cells[i].PadRight(widths[i] + 2));
        }

        return line.ToString().TrimEnd();
    }
}
