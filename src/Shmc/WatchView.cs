using System.Globalization;
using SharedMemChannels.Diagnostics;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Shmc;

/// <summary>A <see cref="WatchSample"/> drawn as tables: the same block in place on a terminal and once per sample in a pipe.</summary>
internal static class WatchView
{
    private static readonly Style Bad = new(Color.Red);

    public static IRenderable Render(WatchSample s, TimeSpan interval)
    {
        var parts = new List<IRenderable>
        {
            Output.Text($"Segment {s.Segment} ({Format.Backend(s.Backend)}) at {Time(s.Time)}, every {Interval(interval)}; rates per second{(s.Seconds is null ? " from the next sample on" : string.Empty)}"),
            Processes(s),
            Output.Text(s.Heap is { } h
                ? $"Heap: {Format.Bytes(h.UsedBytes)} used, {Format.Bytes(h.CachedBytes)} cached, {Format.Bytes(h.FreeBytes)} free of {Format.Bytes(h.Capacity)}"
                : "Heap: not read"),
        };
        parts.Add(s.Channels.Count == 0 ? Output.Text("No channels.") : Channels(s.Channels));
        if (s.Topics.Count > 0)
        {
            parts.Add(Topics(s.Topics));
            if (s.Topics.Any(t => t.Subscribers.Count > 0))
            {
                parts.Add(Subscribers(s.Topics));
            }
        }

        return new Rows(parts);
    }

    /// <summary>The line that starts each plain-text block: the sample's time, so that a log of blocks can be read back.</summary>
    public static string Separator(WatchSample s) => $"--- {Time(s.Time)} ---";

    /// <summary>A rate for a table: "-" when there is none yet.</summary>
    public static string Rate(double? rate) => rate is { } r ? r.ToString(r < 10 ? "0.##" : "0", CultureInfo.InvariantCulture) : "-";

    private static string Time(DateTimeOffset time) => time.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string Interval(TimeSpan interval) => interval.TotalSeconds >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{interval.TotalSeconds:0.###} s")
        : string.Create(CultureInfo.InvariantCulture, $"{interval.TotalMilliseconds:0.###} ms");

    private static Paragraph Processes(WatchSample s)
    {
        var line = new Paragraph($"Processes ({s.LiveProcessCount} live of {s.Processes.Count}):");
        foreach (WatchProcess p in s.Processes)
        {
            line.Append($" {Format.Number(p.ProcessId)}");
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

    private static Table Channels(IReadOnlyList<WatchChannel> channels)
    {
        Table table = Output.Table("CHANNEL", "WRITTEN/S", "READ/S", "DROPPED/S", "COUNT", "WRITTEN", "READ", "DROPPED", "WAITING R/W", "COMPLETION");
        foreach (WatchChannel c in channels)
        {
            table.AddRow(
                Output.Text(c.State == "ready" ? c.Name : $"{c.Name} ({c.State})"),
                Output.Text(Rate(c.WrittenPerSecond)),
                Output.Text(Rate(c.ReadPerSecond)),
                Output.Text(Rate(c.DroppedPerSecond)),
                Output.Text(c.Capacity is { } capacity ? $"{Format.Number(c.Count)}/{Format.Number(capacity)}" : Format.Number(c.Count)),
                Output.Text(Format.Number(c.Written)),
                Output.Text(Format.Number(c.Read)),
                Output.Text(Format.Number(c.Dropped)),
                Output.Text($"{Format.Number(c.WaitingReaders)}/{Format.Number(c.WaitingWriters)}"),
                c.Completion == "faulted" ? new Text($"faulted: {c.CompletionError}", Bad) : Output.Text(c.Completion));
        }

        return table;
    }

    private static Table Topics(IReadOnlyList<WatchTopic> topics)
    {
        Table table = Output.Table("TOPIC", "MESSAGES/S", "MESSAGES", "PUBLISHER", "SUBSCRIBERS");
        foreach (WatchTopic t in topics)
        {
            table.AddRow(
                Output.Text(t.State == "ready" ? t.Name : $"{t.Name} ({t.State})"),
                Output.Text(Rate(t.MessagesPerSecond)),
                Output.Text(Format.Number(t.MessageCount)),
                !t.HasPublisher ? Output.Text("none")
                    : t.PublisherLiveness == ProcessLiveness.Dead ? new Text($"{Pid(t.PublisherProcessId)} DEAD", Bad)
                    : Output.Text($"{Pid(t.PublisherProcessId)} alive"),
                Output.Text(Format.Number(t.Subscribers.Count)));
        }

        return table;
    }

    private static Table Subscribers(IReadOnlyList<WatchTopic> topics)
    {
        Table table = Output.Table("TOPIC", "SUBSCRIBER", "LAG", "DROPS", "DROPS/S");
        foreach (WatchTopic t in topics)
        {
            foreach (WatchSubscriber sub in t.Subscribers)
            {
                table.AddRow(
                    Output.Text(t.Name),
                    sub.Liveness == ProcessLiveness.Dead ? new Text($"{Pid(sub.ProcessId)} DEAD", Bad) : Output.Text(Pid(sub.ProcessId)),
                    Output.Text(Format.Number(sub.Lag)),
                    Output.Text(Format.Number(sub.Drops)),
                    Output.Text(Rate(sub.DropsPerSecond)));
            }
        }

        return table;
    }

    private static string Pid(int processId) => processId == 0 ? "?" : Format.Number(processId);
}
