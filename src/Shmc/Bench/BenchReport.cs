using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Shmc.Bench;

/// <summary>What a run measured, and where: printed as a table or as JSON.</summary>
internal sealed record BenchRun(BenchOptions Options, IReadOnlyList<BenchRow> Rows, string? CompilerVersion, string? LoadAverage)
{
    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg, or null.</summary>
    public static string? ReadLoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The scenario's baseline: its first reference that ran, or null.</summary>
    public BenchRow? Baseline(string scenario) =>
        Rows.FirstOrDefault(r => r.Scenario == scenario && r.IsReference && r.Status == BenchStatus.Ok && r.Figure is > 0);

    /// <summary>
    /// The row's figure over another's: for latency, median over median (below 1 is faster); for
    /// throughput, rate over rate (above 1 is faster).
    /// </summary>
    public static double? Ratio(BenchRow row, BenchRow? other) =>
        row.Status == BenchStatus.Ok && other?.Figure is > 0 && row.Figure is { } figure ? figure / other.Figure.Value : null;

    /// <summary>The references of the row's scenario that ran, other than the row itself.</summary>
    public IEnumerable<BenchRow> ReferencesBeside(BenchRow row) =>
        Rows.Where(r => r.Scenario == row.Scenario && r.IsReference && r.Status == BenchStatus.Ok && r.Figure is > 0 && !ReferenceEquals(r, row));
}

/// <summary>Writes a <see cref="BenchRun"/>.</summary>
internal static class BenchReport
{
    public static void WriteTable(BenchRun run, TextWriter output)
    {
        BenchOptions o = run.Options;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"shmc bench: 64-byte messages; latency = round trip / 2 over {o.Messages:N0} round trips, streaming = {o.StreamMessages:N0} messages; at most {o.Seconds:0.##} s per row"));
        output.WriteLine($"{Environment.ProcessorCount} CPUs, {CpuModel() ?? RuntimeInformation.ProcessArchitecture.ToString()}, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, C compiler: {run.CompilerVersion ?? "none"}");
        output.WriteLine($"load average at start: {run.LoadAverage ?? "unknown"} (other work on the machine delays spinning peers by whole scheduler time slices)");
        output.WriteLine("ratio: latency = median / the scenario's baseline median (lower is faster); streaming = rate / baseline rate (higher is faster)");
        output.WriteLine();

        string[] headers = ["SCENARIO", "ROW", "MEDIAN", "P99", "MSGS/S", "RATIO", "NOTES"];
        var rows = new List<string[]>();
        foreach (BenchScenario scenario in BenchScenario.All)
        {
            BenchRow? baseline = run.Baseline(scenario.Id);
            bool first = true;
            foreach (BenchRow row in run.Rows.Where(r => r.Scenario == scenario.Id))
            {
                rows.Add(
                [
                    first ? scenario.Id : string.Empty,
                    (row.IsReference ? string.Empty : "> ") + row.Id,
                    Nanoseconds(row.MedianNs),
                    Nanoseconds(row.P99Ns),
                    Rate(row.MessagesPerSecond),
                    RatioText(run, row, baseline),
                    row.Status == BenchStatus.Ok ? row.Notes : $"{row.Status.ToString().ToLowerInvariant()}: {row.Notes}",
                ]);
                first = false;
            }
        }

        WriteAligned(output, headers, rows);
        output.WriteLine();
        output.WriteLine("rows:");
        foreach (BenchRow row in run.Rows.DistinctBy(r => (r.Id, r.Description)))
        {
            // An id measured in several ways (the SharedChannel rows) says which scenario each description is of.
            bool several = run.Rows.Where(r => r.Id == row.Id).Select(r => r.Description).Distinct().Count() > 1;
            output.WriteLine(several ? $"  {row.Id} ({row.Scenario}): {row.Description}" : $"  {row.Id}: {row.Description}");
        }
    }

    public static void WriteJson(BenchRun run, TextWriter output)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("tool", "shmc bench");
            w.WriteString("version", typeof(BenchReport).Assembly.GetName().Version?.ToString(3));
            w.WriteStartObject("machine");
            w.WriteNumber("processors", Environment.ProcessorCount);
            w.WriteString("cpu", CpuModel());
            w.WriteString("architecture", RuntimeInformation.ProcessArchitecture.ToString());
            w.WriteString("os", RuntimeInformation.OSDescription);
            w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
            w.WriteString("compiler", run.CompilerVersion);
            w.WriteString("loadAverage", run.LoadAverage);
            w.WriteEndObject();
            w.WriteStartObject("options");
            w.WriteNumber("messages", run.Options.Messages);
            w.WriteNumber("streamMessages", run.Options.StreamMessages);
            w.WriteNumber("seconds", run.Options.Seconds);
            w.WriteNumber("messageBytes", BenchMessage.Size);
            w.WriteEndObject();
            w.WriteStartArray("scenarios");
            foreach (BenchScenario scenario in BenchScenario.All)
            {
                w.WriteStartObject();
                w.WriteString("id", scenario.Id);
                w.WriteString("title", scenario.Title);
                w.WriteString("kind", scenario.Kind == BenchKind.Latency ? "latency" : "throughput");
                w.WriteString("baseline", run.Baseline(scenario.Id)?.Id);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("rows");
            foreach (BenchRow row in run.Rows)
            {
                w.WriteStartObject();
                w.WriteString("scenario", row.Scenario);
                w.WriteString("id", row.Id);
                w.WriteString("description", row.Description);
                w.WriteString("role", row.IsReference ? "reference" : "measured");
                w.WriteString("status", row.Status.ToString().ToLowerInvariant());
                w.WriteNumber("messages", row.Messages);
                w.WriteBoolean("complete", row.Complete);
                Number(w, "medianNs", row.MedianNs);
                Number(w, "p99Ns", row.P99Ns);
                Number(w, "meanNs", row.MeanNs);
                Number(w, "messagesPerSecond", row.MessagesPerSecond);
                w.WriteString("notes", row.Notes);
                Number(w, "ratioToBaseline", BenchRun.Ratio(row, run.Baseline(row.Scenario)));
                w.WriteStartObject("ratios");
                foreach (BenchRow reference in run.ReferencesBeside(row))
                {
                    Number(w, reference.Id, BenchRun.Ratio(row, reference));
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static string RatioText(BenchRun run, BenchRow row, BenchRow? baseline)
    {
        if (row.IsReference)
        {
            return BenchRun.Ratio(row, baseline) is { } r ? $"{Format(r)} {baseline!.Id}" : "-";
        }

        if (row.Figure is null)
        {
            return "-"; // a failed or unavailable row has no ratio
        }

        // A measured row shows its ratio to every reference beside it: the goals are stated against several.
        string all = string.Join(", ", run.ReferencesBeside(row).Select(reference => $"{Format(BenchRun.Ratio(row, reference)!.Value)} {reference.Id}"));
        return all.Length == 0 ? "-" : all;
    }

    private static string Format(double ratio) => ratio.ToString(
        ratio switch
        {
            >= 100 => "0x",
            >= 10 => "0.0x",
            >= 0.1 => "0.00x",
            _ => "0.####x",
        },
        CultureInfo.InvariantCulture);

    private static string Nanoseconds(double? ns) => ns switch
    {
        null => "-",
        < 10_000 => string.Create(CultureInfo.InvariantCulture, $"{ns:0} ns"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ns / 1000:0.0} us"),
    };

    private static string Rate(double? rate) => rate switch
    {
        null => "-",
        >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{rate / 1e6:0.00} M"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{rate / 1e3:0.0} k"),
    };

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v && double.IsFinite(v))
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void WriteAligned(TextWriter output, string[] headers, List<string[]> rows)
    {
        int[] widths = headers.Select(h => h.Length).ToArray();
        foreach (string[] row in rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        foreach (string[] row in rows.Prepend(headers))
        {
            var line = new StringBuilder();
            for (int i = 0; i < row.Length; i++)
            {
                // Numbers right-aligned, words left-aligned.
                bool numeric = i is 2 or 3 or 4;
                line.Append(numeric ? row[i].PadLeft(widths[i]) : row[i].PadRight(widths[i])).Append("  ");
            }

            output.WriteLine(line.ToString().TrimEnd());
        }
    }

    private static string? CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?
                .Split(':', 2)[1].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
