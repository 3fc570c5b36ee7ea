using System.Globalization;
using SharedMemChannels.Diagnostics;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Shmc;

/// <summary>A <see cref="WatchSample"/> drawn as tables: the same block in place on a terminal and once per sample in a pipe.</summary>
internal static class WatchView
{
    private static readonly Style Bad = new(Color.Red);

    /// <summary>The sample as tables for <paramref name="width"/> columns of text (a terminal's, or COLUMNS in a pipe).</summary>
    public static IRenderable Render(WatchSample s, TimeSpan interval, int width)
    {
        var parts = new List<IRenderable>
        {
            Output.Text($"Segment {s.Segment} ({Format.Backend(s.Backend)}) at {Time(s.Time)}, every {Interval(interval)}; rates per second{(s.Seconds is null ? " from the next sample on" : string.Empty)}"),
            Processes(s),
            Output.Text(s.Heap is { } h
                ? $"Heap: {Format.Bytes(h.UsedBytes)} used, {Format.Bytes(h.CachedBytes)} cached, {Format.Bytes(h.FreeBytes)} free of {Format.Bytes(h.Capacity)}"
                : "Heap: not read"),
        };
        parts.Add(s.Channels.Count == 0 ? Output.Text("No channels.") : Channels(s.Channels, width));
        if (s.Topics.Count > 0)
        {
            parts.Add(Topics(s.Topics, width));
            if (s.Topics.Any(t => t.Subscribers.Count > 0))
            {
                parts.Add(Subscribers(s.Topics, width));
            }
        }

        return new Rows(parts);
    }

    /// <summary>The line that starts each plain-text block: the sample's time, so that a log of blocks can be read back.</summary>
    public static string Separator(WatchSample s) => $"--- {Time(s.Time)} ---";

    /// <summary>A rate for a table: "-" when there is none yet.</summary>
    public static string Rate(double? rate) => rate is { } r ? r.ToString(r < 10 ? "0.##" : "#,0", CultureInfo.InvariantCulture) : "-";

    private static string Time(DateTimeOffset time) => time.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string Interval(TimeSpan interval) => interval.TotalSeconds >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{interval.TotalSeconds:0.###} s")
        : string.Create(CultureInfo.InvariantCulture, $"{interval.TotalMilliseconds:0.###} ms");

    private static Paragraph Processes(WatchSample s)
    {
        var line = new Paragraph($"Processes ({s.LiveProcessCount} live of {s.Processes.Count}):");
        foreach (WatchProcess p in s.Processes)
        {
            line.Append($" {Format.Id(p.ProcessId)}");
            if (p.Liveness == ProcessLiveness.Dead)
            {
                line.Append(" DEAD", Bad);
            }
            else if (p.State != ProcessSlotState.Attached)
            {
                line.Append($" ({p.State.ToString().ToLowerInvariant()})");
            }
        }

        return line;
    }

    private static Table Channels(IReadOnlyList<WatchChannel> channels, int width)
    {
        // At 80 columns the rates, the queue, the waiters and the completion stay; the totals go first.
        var table = new WatchTable()
            .Column("CHANNEL", "CHANNEL", int.MaxValue, numbers: false)
            .Column("WRITTEN/S", "WRITE/S", 10)
            .Column("READ/S", "READ/S", 9)
            .Column("DROPPED/S", "DROP/S", 6)
            .Column("COUNT", "QUEUED", 8)
            .Column("WRITTEN", "WRITTEN", 3)
            .Column("READ", "READ", 2)
            .Column("DROPPED", "DROPPED", 4)
            .Column("WAITING R/W", "WAIT R/W", 7)
            .Column("COMPLETION", "STATE", 5, numbers: false);
        foreach (WatchChannel c in channels)
        {
            table.Row(
                c.State == "ready" ? c.Name : $"{c.Name} ({c.State})",
                Rate(c.WrittenPerSecond),
                Rate(c.ReadPerSecond),
                Rate(c.DroppedPerSecond),
                c.Capacity is { } capacity ? $"{Format.Number(c.Count)}/{Format.Number(capacity)}" : Format.Number(c.Count),
                Format.Number(c.Written),
                Format.Number(c.Read),
                Format.Number(c.Dropped),
                $"{Format.Number(c.WaitingReaders)}/{Format.Number(c.WaitingWriters)}",
                c.Completion == "faulted" ? new WatchTable.Cell($"faulted: {c.CompletionError}", Bad) : c.Completion);
        }

        return table.Render(width);
    }

    private static Table Topics(IReadOnlyList<WatchTopic> topics, int width)
    {
        var table = new WatchTable()
            .Column("TOPIC", "TOPIC", int.MaxValue, numbers: false)
            .Column("MESSAGES/S", "MSG/S", 5)
            .Column("MESSAGES", "MSGS", 2)
            .Column("PUBLISHER", "PUB", 4, numbers: false)
            .Column("SUBSCRIBERS", "SUBS", 3);
        foreach (WatchTopic t in topics)
        {
            table.Row(
                t.State == "ready" ? t.Name : $"{t.Name} ({t.State})",
                Rate(t.MessagesPerSecond),
                Format.Number(t.MessageCount),
                !t.HasPublisher ? "none"
                    : t.PublisherLiveness == ProcessLiveness.Dead ? new WatchTable.Cell($"{Pid(t.PublisherProcessId)} DEAD", Bad)
                    : $"{Pid(t.PublisherProcessId)} alive",
                Format.Number(t.Subscribers.Count));
        }

        return table.Render(width);
    }

    private static Table Subscribers(IReadOnlyList<WatchTopic> topics, int width)
    {
        var table = new WatchTable()
            .Column("TOPIC", "TOPIC", int.MaxValue, numbers: false)
            .Column("SUBSCRIBER", "PID", 5, numbers: false)
            .Column("LAG", "LAG", 4)
            .Column("DROPS", "DROPS", 2)
            .Column("DROPS/S", "DROPS/S", 3);
        foreach (WatchTopic t in topics)
        {
            foreach (WatchSubscriber sub in t.Subscribers)
            {
                table.Row(
                    t.Name,
                    sub.Liveness == ProcessLiveness.Dead ? new WatchTable.Cell($"{Pid(sub.ProcessId)} DEAD", Bad) : Pid(sub.ProcessId),
                    Format.Number(sub.Lag),
                    Format.Number(sub.Drops),
                    Rate(sub.DropsPerSecond));
            }
        }

        return table.Render(width);
    }

    private static string Pid(int processId) => processId == 0 ? "?" : Format.Id(processId);
}
