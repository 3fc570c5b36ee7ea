using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// <c>shmc bench</c>, run as a real process with tiny counts: it exits 0, its JSON has every reference
/// row and every SharedChannel row, and it leaves no shared-memory object behind. Nothing here is about speed. The tests of this
/// class run one after another (one class), so that two benchmarks never spin against each other.
/// </summary>
public class BenchToolTests : SegmentTest
{
    /// <summary>Every reference row of the plan: (scenario, id).</summary>
    private static readonly (string Scenario, string Id)[] References =
    [
        ("latency-spin", "c-spsc-ring"),
        ("latency-spin", "naive-mmap-ring"),
        ("latency-spin", "bcl-channel-spin"),
        ("latency-sleep", "c-futex-pingpong"),
        ("latency-async", "bcl-channel-async"),
        ("stream-spsc", "c-spsc-ring"),
        ("stream-spsc", "naive-mmap-ring"),
        ("stream-spsc", "bcl-channel"),
        ("stream-mpmc", "bcl-channel-mpmc"),
        ("serialized-trade", "bcl-channel-trade"),
        ("prioritized", "bcl-prioritized"),
    ];

    /// <summary>The measured rows: SharedChannel&lt;T&gt; in every scenario, after that scenario's references.</summary>
    private static readonly (string Scenario, string Id)[] Measured =
    [
        ("latency-spin", "shared-channel"),
        ("latency-sleep", "shared-channel"),
        ("latency-async", "shared-channel"),
        ("stream-spsc", "shared-channel"),
        ("stream-mpmc", "shared-channel"),
        ("serialized-trade", "shared-memorypack"),
        ("serialized-trade", "shared-stj"),
        ("prioritized", "shared-prioritized"),
    ];

    private static readonly string[] NativeIds = ["c-spsc-ring", "c-futex-pingpong"];

    private static readonly string[] DefaultCompilers = ["cc", "gcc", "clang"];

    /// <summary>Tiny counts and a generous cap: each row finishes its count long before the cap, even on a loaded machine.</summary>
    private static readonly string[] Tiny = ["--messages", "200", "--stream-messages", "20000", "--seconds", "20"];

    [Fact]
    public void Bench_json_has_every_reference_row_measured_and_leaves_nothing_in_dev_shm()
    {
        string cache = Directory.CreateTempSubdirectory("shmc-bench-test-").FullName;
        try
        {
            HashSet<string> before = BenchObjects();
            // A fresh cache directory: the C references are compiled in this run, not found from an earlier one.
            (int code, string output, string errors) = RunShmc(new() { ["XDG_CACHE_HOME"] = cache }, ["bench", "--json", .. Tiny]);
            Assert.True(code == 0, $"exit {code}\n{output}\n{errors}");

            using JsonDocument json = JsonDocument.Parse(output);
            JsonElement root = json.RootElement;
            Assert.Equal("shmc bench", root.GetProperty("tool").GetString());
            Assert.Equal(200, root.GetProperty("options").GetProperty("messages").GetInt32());
            Assert.Equal(64, root.GetProperty("options").GetProperty("messageBytes").GetInt32());
            JsonElement[] rows = [.. root.GetProperty("rows").EnumerateArray()];
            bool compiler = HasCompiler();
            foreach ((string scenario, string id) in References)
            {
                JsonElement row = Assert.Single(rows, r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("id").GetString() == id);
                Assert.Equal("reference", row.GetProperty("role").GetString());
                string status = row.GetProperty("status").GetString()!;
                if (!compiler && NativeIds.Contains(id))
                {
                    Assert.Equal("unavailable", status);
                    Assert.Contains("no C compiler", row.GetProperty("notes").GetString(), StringComparison.Ordinal);
                    continue;
                }

                Assert.True(status == "ok", $"{scenario} {id}: {status}: {row.GetProperty("notes").GetString()}");
                AssertMeasured(row, scenario.StartsWith("latency", StringComparison.Ordinal));
            }

            AssertMeasuredRows(rows);
            Assert.All(root.GetProperty("scenarios").EnumerateArray(), s => Assert.NotNull(s.GetProperty("baseline").GetString()));
            Assert.Empty(BenchObjects().Except(before));
            if (compiler)
            {
                // The binaries were cached where XDG_CACHE_HOME says, and nothing half-built is left beside them.
                string[] built = [.. Directory.GetFiles(Path.Combine(cache, "shmc", "bench")).Select(f => Path.GetFileName(f))];
                Assert.Contains(built, f => f.StartsWith("spsc_ring-", StringComparison.Ordinal));
                Assert.Contains(built, f => f.StartsWith("futex_pingpong-", StringComparison.Ordinal));
                Assert.DoesNotContain(built, f => f.EndsWith(".tmp", StringComparison.Ordinal) || f.EndsWith(".c", StringComparison.Ordinal));
            }
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Fact]
    public void Bench_json_with_a_short_cap_has_every_shared_channel_row_ok_beside_its_references_and_leaves_nothing()
    {
        HashSet<string> before = BenchObjects();
        (int code, string output, string errors) = RunShmc(new(), ["bench", "--json", "--messages", "200", "--stream-messages", "20000", "--seconds", "0.5"]);
        Assert.True(code == 0, $"exit {code}\n{output}\n{errors}");
        using JsonDocument json = JsonDocument.Parse(output);
        JsonElement[] rows = [.. json.RootElement.GetProperty("rows").EnumerateArray()];
        AssertMeasuredRows(rows);
        Assert.Empty(BenchObjects().Except(before));
    }

    [Fact]
    public void Without_a_C_compiler_the_native_rows_are_unavailable_and_the_table_still_prints()
    {
        HashSet<string> before = BenchObjects();
        (int code, string output, string errors) = RunShmc(new() { ["CC"] = "/nonexistent/shmc-test-cc" }, ["bench", .. Tiny]);
        Assert.True(code == 0, $"exit {code}\n{output}\n{errors}");
        string[] lines = output.Split('\n');
        foreach (string id in NativeIds)
        {
            Assert.Contains(lines, l => l.Contains($" {id} ", StringComparison.Ordinal) && l.Contains("unavailable (no C compiler", StringComparison.Ordinal));
        }

        // The C# references run, and the first of them becomes the baseline of its scenario.
        string naive = Assert.Single(lines, l => l.StartsWith("latency-spin", StringComparison.Ordinal));
        Assert.Contains("c-spsc-ring", naive, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Contains("naive-mmap-ring", StringComparison.Ordinal) && l.Contains("1.00x naive-mmap-ring", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("bcl-channel-mpmc", StringComparison.Ordinal) && l.Contains("1.00x bcl-channel-mpmc", StringComparison.Ordinal));
        Assert.Empty(BenchObjects().Except(before));
    }

    [Theory]
    [InlineData("bench", "--messages", "0")]
    [InlineData("bench", "--messages", "1.5")]
    [InlineData("bench", "--seconds", "soon")]
    [InlineData("bench", "--stream-messages")]
    [InlineData("bench", "--bogus")]
    [InlineData("bench", "--only")]
    [InlineData("bench-peer", "nothing")]
    public void Bad_bench_usage_exits_2_with_one_line(params string[] args)
    {
        ChildProcess shmc = Shmc(args);
        int code = shmc.WaitForExit();
        Assert.Equal(2, code);
        string[] lines = shmc.Transcript.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("stderr: shmc: ", lines[0], StringComparison.Ordinal);
    }

    /// <summary>
    /// Each SharedChannel row ran (status ok, something measured), as a measured row placed after its
    /// scenario's references, with a ratio to each reference that ran. Never about speed.
    /// </summary>
    private static void AssertMeasuredRows(JsonElement[] rows)
    {
        foreach ((string scenario, string id) in Measured)
        {
            JsonElement row = Assert.Single(rows, r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("id").GetString() == id);
            Assert.Equal("measured", row.GetProperty("role").GetString());
            Assert.True(row.GetProperty("status").GetString() == "ok", $"{scenario} {id}: {row.GetProperty("status").GetString()}: {row.GetProperty("notes").GetString()}");
            AssertMeasured(row, scenario.StartsWith("latency", StringComparison.Ordinal));
            int index = Array.FindIndex(rows, r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("id").GetString() == id);
            JsonElement[] references = [.. rows.Where(r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("role").GetString() == "reference")];
            Assert.NotEmpty(references);
            Assert.All(references, r => Assert.True(Array.IndexOf(rows, r) < index, $"{scenario}: the reference {r.GetProperty("id").GetString()} comes after the measured row"));
            JsonElement ratios = row.GetProperty("ratios");
            foreach (JsonElement reference in references.Where(r => r.GetProperty("status").GetString() == "ok"))
            {
                Assert.True(ratios.GetProperty(reference.GetProperty("id").GetString()!).GetDouble() > 0);
            }
        }
    }

    private static void AssertMeasured(JsonElement row, bool latency)
    {
        Assert.True(row.GetProperty("messages").GetInt64() > 0);
        if (latency)
        {
            double median = row.GetProperty("medianNs").GetDouble();
            Assert.True(median > 0);
            Assert.True(row.GetProperty("p99Ns").GetDouble() >= median);
            Assert.Equal(JsonValueKind.Null, row.GetProperty("messagesPerSecond").ValueKind);
        }
        else
        {
            Assert.True(row.GetProperty("messagesPerSecond").GetDouble() > 0);
            Assert.Equal(JsonValueKind.Null, row.GetProperty("medianNs").ValueKind);
        }

        Assert.True(row.GetProperty("ratioToBaseline").GetDouble() > 0);
    }

    /// <summary>The shared-memory objects the benchmark names (C and C# references alike).</summary>
    private static HashSet<string> BenchObjects() =>
        [.. Directory.GetFiles("/dev/shm", "shmc-bench-*").Concat(Directory.GetFiles("/dev/shm", "shmc.bench-*")).Select(f => Path.GetFileName(f))];

    private static bool HasCompiler() =>
        (Environment.GetEnvironmentVariable("CC") is { Length: > 0 } cc ? [cc] : DefaultCompilers)
        .Any(name => name.Contains('/', StringComparison.Ordinal) ? File.Exists(name)
            : (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, name))));

    /// <summary>
    /// Runs shmc to its end with extra environment variables (which <see cref="ChildProcess"/> does not
    /// set), killing it if it outlives a bound far above what tiny counts need.
    /// </summary>
    private static (int Code, string Output, string Errors) RunShmc(Dictionary<string, string> environment, string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path
            : "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "shmc.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"shmc {string.Join(' ', args)} did not finish in 5 minutes:\n{output.Result}\n{errors.Result}");
        }

        process.WaitForExit();
        return (process.ExitCode, output.Result, errors.Result);
    }
}
