using System.Text.Json;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>The shmc tool, run as a real process: tables, JSON, exit codes, one-line errors, the demo.</summary>
public class ShmcToolTests : SegmentTest
{
    private (int ExitCode, string Output) Run(params string[] args)
    {
        ChildProcess shmc = Shmc(args);
        int code = shmc.WaitForExit();
        return (code, shmc.Transcript);
    }

    [Fact]
    public void List_shows_segments_with_backend_sizes_live_processes_and_version()
    {
        string name = NewName("tool");
        using SharedSegment segment = CreateSegment(name, NewOptions(capacity: 128 * 1024, max: 1 << 20));
        (int code, string output) = Run("list");
        Assert.Equal(0, code);
        string line = output.Split('\n').Single(l => l.Contains($" {name} ", StringComparison.Ordinal));
        Assert.Contains("posix", line, StringComparison.Ordinal);
        Assert.Contains("128 KiB", line, StringComparison.Ordinal);
        Assert.Contains("1 MiB", line, StringComparison.Ordinal);
        Assert.Contains("ready", line, StringComparison.Ordinal);

        (code, output) = Run("list", "--json");
        Assert.Equal(0, code);
        using JsonDocument json = JsonDocument.Parse(output);
        JsonElement entry = json.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        Assert.Equal(128 * 1024, entry.GetProperty("capacity").GetInt64());
        Assert.Equal(1, entry.GetProperty("liveProcessCount").GetInt32());
        Assert.Equal("ready", entry.GetProperty("status").GetString());
        Assert.Equal(2, entry.GetProperty("layoutVersion").GetInt32());
        Assert.Equal("posix", entry.GetProperty("backend").GetString());
    }

    [Fact]
    public void Inspect_shows_the_header_the_process_table_with_the_dead_marked_the_heap_and_objects()
    {
        string name = NewName("tool");
        using SharedSegment segment = CreateSegment(name, NewOptions());
        segment.Construct<Point>("the-point");
        ShmHandle block = segment.Allocate(100);
        segment.Free(block); // leaves a cached block in this thread's cache
        ChildProcess victim = Host("hold", name);
        victim.WaitForLine("ready");
        victim.Kill();

        (int code, string output) = Run("inspect", name);
        Assert.Equal(0, code);
        Assert.Contains("layout version", output, StringComparison.Ordinal);
        Assert.Contains("DEAD", output, StringComparison.Ordinal);
        Assert.Contains("Heap:", output, StringComparison.Ordinal);
        Assert.Contains("largest free block", output, StringComparison.Ordinal);
        Assert.Contains("Per-thread caches:", output, StringComparison.Ordinal);
        Assert.Contains("the-point", output, StringComparison.Ordinal);
        Assert.Contains("SharedMemChannels.Tests.Point", output, StringComparison.Ordinal);

        (code, output) = Run("inspect", name, "--json");
        Assert.Equal(0, code);
        using JsonDocument json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        Assert.Equal(name, root.GetProperty("name").GetString());
        Assert.Contains(root.GetProperty("processes").EnumerateArray(), p => p.GetProperty("liveness").GetString() == "dead" && p.GetProperty("processId").GetInt32() == victim.Pid);
        Assert.Contains(root.GetProperty("processes").EnumerateArray(), p => p.GetProperty("processId").GetInt32() == Environment.ProcessId && p.GetProperty("liveness").GetString() == "alive");
        Assert.True(root.GetProperty("heap").GetProperty("freeBytes").GetInt64() > 0);
        Assert.Contains(root.GetProperty("heap").GetProperty("threadCaches").EnumerateArray(), c => c.GetProperty("processId").GetInt32() == Environment.ProcessId);
        Assert.Equal("the-point", root.GetProperty("namedObjects")[0].GetProperty("name").GetString());
        Assert.Equal(8, root.GetProperty("namedObjects")[0].GetProperty("size").GetInt32());

        // Inspecting changed nothing: the dead slot is still there to be reclaimed.
        Assert.Equal(1, segment.ReclaimDeadProcesses());
    }

    [Fact]
    public void Inspect_reports_a_file_that_is_not_a_segment()
    {
        string name = NewName("tool");
        File.WriteAllText(Platform.Linux.PosixSharedMemoryProvider.PathOf(name), "a text file, not a segment");
        (int code, string output) = Run("inspect", name);
        Assert.Equal(1, code);
        Assert.Contains("not a segment", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Remove_removes_and_reports_a_missing_segment()
    {
        string name = NewName("tool");
        using (CreateSegment(name, NewOptions()))
        {
        }

        (int code, string output) = Run("remove", name);
        Assert.Equal(0, code);
        Assert.Contains("Removed", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(name));

        (code, output) = Run("remove", name);
        Assert.Equal(1, code);
        Assert.Contains($"no segment '{name}'", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("inspect", "../etc")]
    [InlineData("remove", "a/b")]
    [InlineData("inspect")]
    [InlineData("frobnicate")]
    [InlineData("list", "--bogus")]
    [InlineData("inspect", "x", "--backend", "nfs")]
    public void Bad_usage_exits_2_with_one_line(params string[] args)
    {
        (int code, string output) = Run(args);
        Assert.Equal(2, code);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("stderr: shmc: ", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_of_a_missing_segment_exits_1()
    {
        (int code, string output) = Run("inspect", NewName("missing"));
        Assert.Equal(1, code);
        Assert.Contains("no segment", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_demo_streams_from_a_producer_process_reports_rate_and_latency_and_cleans_up()
    {
        string name = NewName("demo");
        (int code, string output) = Run("demo", "--name", name, "--messages", "20000");
        Assert.True(code == 0, output);
        Assert.Contains("received 20,000 messages", output, StringComparison.Ordinal);
        Assert.Contains(", 0 out of order", output, StringComparison.Ordinal);
        Assert.Contains("messages/s", output, StringComparison.Ordinal);
        Assert.Matches(@"p50 [\d.]+ (ns|us|ms)\s+p90 .* p99 ", output);
        Assert.Contains("reading with await foreach", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(SharedChannel.SegmentPrefix + name));
    }

    [Fact]
    public void The_demo_rejects_bad_options()
    {
        Assert.Equal(2, Run("demo", "--messages", "0").ExitCode);
        Assert.Equal(2, Run("demo", "--name", "../etc").ExitCode);
    }

    [Fact]
    public void Help_and_version()
    {
        (int code, string output) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains("list", output, StringComparison.Ordinal);
        Assert.Contains("inspect <name>", output, StringComparison.Ordinal);
        (code, output) = Run("--version");
        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", output);
    }
}
