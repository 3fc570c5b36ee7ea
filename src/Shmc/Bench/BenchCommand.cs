using System.ComponentModel;
using System.Diagnostics;

namespace Shmc.Bench;

/// <summary>
/// <c>shmc bench</c>: the cross-process benchmark. Every row is measured beside its references in the
/// same run (the machine this runs on drifts from minute to minute), and printed with its ratio to them.
/// </summary>
internal static class BenchCommand
{
    /// <summary>A spinning median above this (100 us) is a scheduler time slice, not a hand-over.</summary>
    private const double SharedCpuNs = 100_000;

    /// <summary>The hidden <c>bench-peer KIND ARGS</c> that a measurement starts as its second process.</summary>
    public static int Peer(IReadOnlyList<string> args) => PeerCore([.. args]);

    /// <summary>Measures every row of the plan and writes the report; 0 when no row failed, 1 otherwise.</summary>
    public static int Run(BenchOptions options, TextWriter output) => Run(options, BenchPlan.Default, output);

    /// <summary>Measures the given rows, in order, and writes the report.</summary>
    public static int Run(BenchOptions options, IReadOnlyList<BenchEntry> plan, TextWriter output)
    {
        string? load = BenchRun.ReadLoadAverage();
        using var native = new NativeReferences();
        var context = new BenchContext(options, native);
        var rows = new List<BenchRow>();
        bool progress = !options.Json && !Console.IsErrorRedirected;
        foreach (BenchEntry entry in plan.Where(e => options.Only.Count == 0 || options.Only.Contains(e.Id) || options.Only.Contains(e.Scenario.Id)))
        {
            if (progress)
            {
                Console.Error.Write($"\rmeasuring {entry.Scenario.Id} {entry.Id}...".PadRight(60));
            }

            rows.Add(Measure(entry, context));
        }

        if (progress)
        {
            Console.Error.Write("\r".PadRight(61) + "\r");
        }

        var run = new BenchRun(options, rows, native.CompilerVersion, load);
        if (options.Json)
        {
            BenchReport.WriteJson(run, output);
        }
        else
        {
            BenchReport.WriteTable(run, output);
        }

        return rows.Any(r => r.Status == BenchStatus.Failed) ? Program.ExitFailed : Program.ExitOk;
    }

    /// <summary>
    /// Starts this program again with <paramref name="args"/> (as <c>dotnet shmc.dll</c> when that is how
    /// it runs), its standard streams redirected so that it never writes into this one's report.
    /// </summary>
    public static Process StartSelf(params string[] args)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where this program is");
        var start = new ProcessStartInfo(self)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(BenchCommand).Assembly.Location);
        }

        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("could not start a second shmc process");
    }

    private static BenchRow Measure(BenchEntry entry, BenchContext context)
    {
        try
        {
            BenchRow row = entry.Measure(entry, context);
            // Two spinning sides that the scheduler put on one CPU hand over once per time slice (ms):
            // say so, rather than let a reader take it for the implementation's latency.
            return entry.Scenario == BenchScenario.LatencySpin && row.MedianNs > SharedCpuNs
                ? row with { Notes = $"{row.Notes}; the spinning sides shared one CPU (scheduler time slices): rerun on a quieter machine" }
                : row;
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            return BenchRow.Failed(entry, OneLine(e.InnerExceptions[0].Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or TimeoutException or Win32Exception or System.Text.Json.JsonException or KeyNotFoundException)
        {
            return BenchRow.Failed(entry, OneLine(e.Message));
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>The hidden second process of a measurement.</summary>
    private static int PeerCore(string[] args) => args switch
    {
        ["naive-ring", string path] => RunPeer(() => NaiveMappedRing.Peer(path)),
        [SharedChannelRows.PeerKind, string segment, string mode, string bound] => RunPeer(() => SharedChannelRows.Peer(segment, mode, bound)),
        [TopicRows.PeerKind, string segment, string count, string bound, string mode] => RunPeer(() => TopicRows.Peer(segment, count, bound, mode)),
        [RecordRows.PeerKind, string segment, string size, string mode, string bound] => RunPeer(() => RecordRows.Peer(segment, size, mode, bound)),
        [SerializedRows.PeerKind, string segment, string format, string bound] => RunPeer(() => SerializedRows.Peer(segment, format, bound)),
        [PrioritizedRows.PeerKind, string segment, string bound] => RunPeer(() => PrioritizedRows.Peer(segment, bound)),
        _ => Program.Fail("bench-peer: unknown arguments", Program.ExitUsage),
    };

    /// <summary>Runs a peer; what it may throw (a failed open, a damaged or abandoned channel, a timeout) becomes one error line and exit 1.</summary>
    private static int RunPeer(Func<int> peer)
    {
        try
        {
            return peer();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or KeyNotFoundException
            or InvalidCastException or InvalidDataException or TimeoutException or OperationCanceledException or AggregateException
            or SharedMemChannels.InvalidSegmentException or SharedMemChannels.ChannelAbandonedException)
        {
            return Program.Fail(OneLine(e is AggregateException { InnerException: { } inner } ? inner.Message : e.Message), Program.ExitFailed);
        }
    }
}
