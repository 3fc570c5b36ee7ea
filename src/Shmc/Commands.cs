using SharedMemChannels;
using SharedMemChannels.Diagnostics;
using Spectre.Console;

namespace Shmc;

/// <summary>The list, inspect and remove commands: the public inspection API, drawn as tables or written as JSON.</summary>
internal static class Commands
{
    private static readonly Style Bad = new(Color.Red);

    public static int List(bool json)
    {
        IReadOnlyList<SegmentReport> reports = SegmentDiagnostics.List();
        if (json)
        {
            ShmcJsonContext.Write(reports, ShmcJsonContext.Readable.IReadOnlyListSegmentReport);
            return Program.ExitOk;
        }

        IAnsiConsole console = Output.Console;
        if (reports.Count == 0)
        {
            console.WriteLine("No SharedMemChannels segments.");
            return Program.ExitOk;
        }

        Table table = Output.Table("NAME", "BACKEND", "CAPACITY", "OBJECT", "MAX", "LIVE", "VERSION", "RETAINED", "STATE");
        foreach (SegmentReport r in reports)
        {
            bool header = r.Capacity != 0;
            table.AddRow(
                Output.Text(r.Name),
                Output.Text(Format.Backend(r.Backend)),
                Output.Text(header ? Format.Bytes(r.Capacity) : "-"),
                Output.Text(Format.Bytes(r.ObjectSize)),
                Output.Text(header ? Format.Bytes(r.MaxCapacity) : "-"),
                Output.Text(r.Status == SegmentStatus.Ready || r.Processes.Count > 0 ? Format.Number(r.LiveProcessCount) : "-"),
                Output.Text(r.LayoutVersion == 0 ? "-" : Format.Id(r.LayoutVersion)),
                Output.Text(Retained(r)),
                Status(r));
        }

        console.Write(table);
        return Program.ExitOk;
    }

    /// <summary>The list's RETAINED cell: channels kept without a live reference for what they hold, and their items.</summary>
    private static string Retained(SegmentReport r)
    {
        List<ChannelReport> retained = [.. r.Channels.Where(c => c.Retained)];
        return retained.Count == 0
            ? "-"
            : $"{Format.Number(retained.Count)} ({Format.Number(retained.Sum(c => c.Count))} items)";
    }

    public static int Inspect(string name, SharedMemoryBackend? backend, bool json)
    {
        SegmentReport report;
        try
        {
            report = backend is { } b ? SegmentDiagnostics.Inspect(name, b) : SegmentDiagnostics.Inspect(name);
        }
        catch (FileNotFoundException)
        {
            return Program.Fail($"no segment '{name}'", Program.ExitFailed);
        }

        if (json)
        {
            ShmcJsonContext.Write(report, ShmcJsonContext.Readable.SegmentReport);
        }
        else
        {
            WriteDetail(Output.Console, report);
        }

        return report.Status == SegmentStatus.Ready ? Program.ExitOk : Program.ExitFailed;
    }

    public static int Remove(string name, SharedMemoryBackend? backend)
    {
        bool removed = backend is { } b ? SharedSegment.Remove(name, b) : SharedSegment.Remove(name);
        if (!removed)
        {
            return Program.Fail($"no segment '{name}'", Program.ExitFailed);
        }

        Console.WriteLine($"Removed segment '{name}'.");
        return Program.ExitOk;
    }

    /// <summary>"ready", or what is wrong, DAMAGED in capitals so that it stands out in a list.</summary>
    private static Text Status(SegmentReport r) => r.Status switch
    {
        SegmentStatus.Ready => Output.Text("ready"),
        SegmentStatus.Damaged => new Text($"DAMAGED: {r.Problem}", Bad),
        SegmentStatus.Initializing => Output.Text($"initializing: {r.Problem}"),
        SegmentStatus.Foreign => Output.Text(r.Problem ?? "not a segment"),
        SegmentStatus.OtherVersion => Output.Text($"other version: {r.Problem}"),
        _ => Output.Text($"inaccessible: {r.Problem}"),
    };

    private static void WriteDetail(IAnsiConsole console, SegmentReport r)
    {
        Table header = Output.Table("FIELD", "VALUE");
        void Row(string field, string value) => header.AddRow(Output.Text(field), Output.Text(value));
        Row("name", r.Name);
        Row("backend", Format.Backend(r.Backend));
        Row("location", r.Location);
        header.AddRow(Output.Text("status"), Status(r));
        Row("object size", Format.Bytes(r.ObjectSize));
        Row("owner uid", Format.Id(r.OwnerUserId));
        if (r.LayoutVersion != 0)
        {
            Row("layout version", Format.Id(r.LayoutVersion));
        }

        if (r.MaxCapacity != 0)
        {
            Row("capacity", Format.Bytes(r.Capacity));
            Row("max capacity", Format.Bytes(r.MaxCapacity));
            Row("initial capacity", Format.Bytes(r.InitialCapacity));
            Row("mode", Format.Mode(r.Mode));
            Row("remove on last detach", r.RemoveOnLastDetach ? "yes" : "no");
            Row("creator pid", Format.Id(r.CreatorProcessId));
            Row("created", Format.Time(r.CreationTime));
        }

        console.Write(header);
        if (r.Status is not (SegmentStatus.Ready or SegmentStatus.Damaged) || (r.Processes.Count == 0 && r.Heap is null))
        {
            return;
        }

        console.WriteLine();
        console.WriteLine($"Processes ({r.LiveProcessCount} live of {r.Processes.Count} slots in use):");
        Table processes = Output.Table("SLOT", "PID", "GEN", "STATE", "ALIVE", "ATTACHED");
        foreach (ProcessReport p in r.Processes)
        {
            processes.AddRow(
                Output.Text(Format.Id(p.Slot)),
                Output.Text(Format.Id(p.ProcessId)),
                Output.Text(Format.Id(p.Generation)),
                Output.Text(p.State.ToString().ToLowerInvariant()),
                p.Liveness switch
                {
                    ProcessLiveness.Alive => Output.Text("yes"),
                    ProcessLiveness.Dead => new Text("DEAD", Bad),
                    _ => Output.Text("unknown (other pid namespace)"),
                },
                Output.Text(Format.Time(p.AttachTime)));
        }

        console.Write(processes);
        console.WriteLine();
        if (r.Heap is not { } h)
        {
            console.WriteLine("Heap: not read (see the status).");
            return;
        }

        console.WriteLine("Heap:");
        Table heap = Output.Table("FIELD", "VALUE");
        void HeapRow(string field, string value) => heap.AddRow(Output.Text(field), Output.Text(value));
        HeapRow("capacity", Format.Bytes(h.Capacity));
        HeapRow("used", $"{Format.Bytes(h.UsedBytes)} in {h.AllocatedBlocks} blocks");
        HeapRow("cached", $"{Format.Bytes(h.CachedBytes)} in {h.CachedBlocks} blocks");
        HeapRow("free", $"{Format.Bytes(h.FreeBytes)} in {h.FreeBlocks} blocks");
        HeapRow("largest free block", Format.Bytes(h.LargestFreeBlock));
        HeapRow("blocks", Format.Number(h.BlockCount));
        HeapRow("recoveries", Format.Number(h.Recoveries));
        HeapRow("dead processes reclaimed", Format.Number(h.Reclaims));
        console.Write(heap);
        if (h.ThreadCaches.Count > 0)
        {
            console.WriteLine();
            console.WriteLine("Per-thread caches:");
            Table caches = Output.Table("PID", "SLOT", "THREAD", "BLOCKS", "BYTES");
            foreach (ThreadCacheStatistics c in h.ThreadCaches)
            {
                caches.AddRow(
                    Output.Text(c.ProcessId == 0 ? "?" : Format.Id(c.ProcessId)),
                    Output.Text(Format.Id(c.ProcessSlot)),
                    Output.Text(Format.Id(c.ThreadId)),
                    Output.Text(Format.Number(c.Blocks)),
                    Output.Text(Format.Bytes(c.Bytes)));
            }

            console.Write(caches);
        }

        console.WriteLine();
        console.WriteLine($"Named objects ({r.NamedObjects.Count}):");
        if (r.NamedObjects.Count > 0)
        {
            Table objects = Output.Table("NAME", "TYPE", "SIZE", "HANDLE");
            foreach (NamedObjectInfo o in r.NamedObjects)
            {
                objects.AddRow(Output.Text(o.Name), Output.Text(o.TypeName), Output.Text(Format.Number(o.Size)), Output.Text(o.Handle.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            console.Write(objects);
        }

        console.WriteLine();
        console.WriteLine($"Channels ({r.Channels.Count}):");
        foreach (ChannelReport ch in r.Channels)
        {
            Table channel = Output.Table("FIELD", "VALUE");
            void ChannelRow(string field, string value) => channel.AddRow(Output.Text(field), Output.Text(value));
            ChannelRow("name", ch.Name);
            ChannelRow("state", ch.Retained
                ? $"{ch.State}, retained: no live reference, kept for {Format.Number(ch.Count)} items{(ch.Completion != "open" && !ch.CompletionSeen ? " and a completion no reader has seen" : string.Empty)}"
                : ch.State);
            ChannelRow("element", ch.ElementKind switch
            {
                "serialized" => $"{ch.ElementTypeName}, serialized by {ch.SerializerIdentity} (records up to {Format.Bytes(ch.MaxRecordSize)})",
                "records" => $"records up to {Format.Bytes(ch.MaxRecordSize)}",
                _ => $"{ch.ElementTypeName} ({Format.Number(ch.ElementSize)} B)",
            });
            string flags = $"{(ch.SingleReader ? ", single reader" : string.Empty)}{(ch.SingleWriter ? ", single writer" : string.Empty)}{(ch.Persistent ? ", persistent" : string.Empty)}{(ch.RetainUndelivered ? string.Empty : ", discards undelivered")}";
            ChannelRow("capacity", ch.ComparerIdentity is not null
                ? $"unbounded, prioritized by {ch.ComparerIdentity}{flags}"
                : ch.IsUnbounded
                ? $"unbounded, chunks of {Format.Number(ch.ChunkCapacity)}{flags}"
                : $"{Format.Number(ch.Capacity)}, {ch.FullMode}, {ch.Ring}{flags}");
            if (ch.ComparerIdentity is not null)
            {
                ChannelRow("heap", $"room for {Format.Number(ch.HeapCapacity)} ({Format.Bytes(ch.ChunkBytes)})");
            }
            else if (ch.IsUnbounded)
            {
                ChannelRow("chunks", $"{Format.Number(ch.ChunkCount)} ({Format.Bytes(ch.ChunkBytes)})");
            }

            ChannelRow("count", Format.Number(ch.Count));
            ChannelRow("written / read / dropped", $"{Format.Number(ch.Written)} / {Format.Number(ch.Read)} / {Format.Number(ch.Dropped)}");
            ChannelRow("lost / skipped (crashes)", $"{Format.Number(ch.Lost)} / {Format.Number(ch.Skipped)}");
            ChannelRow("waiting readers / writers", $"{Format.Number(ch.WaitingReaders)} / {Format.Number(ch.WaitingWriters)}");
            ChannelRow("completion", ch.CompletionError is null ? ch.Completion : $"{ch.Completion}: {ch.CompletionError}");
            foreach (ChannelEndpointReport e in ch.Endpoints)
            {
                string roles = string.Join(" ", new[] { e.IsReader ? "reader" : null, e.IsWriter ? "writer" : null, e.HoldsReaderLease ? "(single reader)" : null, e.HoldsWriterLease ? "(single writer)" : null }.Where(x => x is not null));
                ChannelRow($"process {(e.ProcessId == 0 ? "?" : Format.Id(e.ProcessId))}", $"{(roles.Length == 0 ? "attached" : roles)}{(e.Liveness == ProcessLiveness.Dead ? " DEAD" : string.Empty)}");
            }

            console.Write(channel);
        }

        foreach (TopicReport t in r.Topics)
        {
            console.WriteLine();
            console.WriteLine($"Topic {t.Name} ({t.State}{(t.Persistent ? ", persistent" : string.Empty)}): {Format.Number(t.MessageCount)} messages, {t.BufferCount} buffers of {Format.Bytes(t.BufferSize)}, history {t.HistoryDepth}, ack timeout {t.AckTimeoutMs} ms ({t.AckPolicy}), notifier {t.Notifier}, {Format.Number(t.References)} references");
            if (t.MessageType is not null)
            {
                console.WriteLine($"  messages: {t.MessageType}");
            }

            string publisher = !t.HasPublisher ? "none" : $"process {(t.PublisherProcessId == 0 ? "?" : Format.Id(t.PublisherProcessId))}{(t.PublisherLiveness == ProcessLiveness.Dead ? " DEAD" : string.Empty)}";
            console.WriteLine($"  publisher: {publisher}");
            console.WriteLine($"  completion: {(t.CompletionError is null ? t.Completion : $"{t.Completion}: {t.CompletionError}")}");
            Table subscribers = Output.Table("SUBSCRIBER", "POSITION", "BEHIND", "DROPS");
            foreach (TopicSubscriberReport s in t.Subscribers)
            {
                subscribers.AddRow(
                    Output.Text($"process {(s.ProcessId == 0 ? "?" : Format.Id(s.ProcessId))}{(s.Liveness == ProcessLiveness.Dead ? " DEAD" : string.Empty)}"),
                    Output.Text(Format.Number(s.Position)),
                    Output.Text(Format.Number(Math.Max(0, t.MessageCount - s.Position))),
                    Output.Text(Format.Number(s.Drops)));
            }

            console.Write(subscribers);
        }

        if (r.SyncObjects.Count > 0)
        {
            console.WriteLine();
            console.WriteLine($"Synchronization objects ({r.SyncObjects.Count}):");
            Table sync = Output.Table("NAME", "KIND", "STATE", "WAITERS");
            foreach (SyncObjectReport o in r.SyncObjects)
            {
                string state = o.Kind switch
                {
                    "mutex" when o.IsHeld => $"held by {(o.HolderProcessId == 0 ? "?" : Format.Number(o.HolderProcessId))}{(o.HolderLiveness == ProcessLiveness.Dead ? " DEAD (abandoned)" : string.Empty)}",
                    "mutex" => "free",
                    "event" => $"{(o.IsSet ? "set" : "not set")}, {(o.AutoReset ? "auto" : "manual")} reset",
                    "semaphore" => $"{Format.Number(o.Count)} of {Format.Number(o.MaximumCount)}",
                    _ => o.Kind,
                };
                sync.AddRow(Output.Text(o.Name), Output.Text(o.Kind), Output.Text(state), Output.Text(Format.Number(o.Waiters)));
            }

            console.Write(sync);
        }
    }
}
