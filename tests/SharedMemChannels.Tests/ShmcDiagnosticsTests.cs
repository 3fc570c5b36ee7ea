using System.Text.Json;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>shmc on damaged segments, its help and its usage errors, run as a real process.</summary>
public class ShmcDiagnosticsTests : SegmentTest
{
    private (int ExitCode, string Output) Run(params string[] args)
    {
        ChildProcess shmc = Shmc(args);
        int code = shmc.WaitForExit();
        return (code, shmc.Transcript);
    }

    [Fact]
    public void A_truncated_segment_shows_as_damaged_in_inspect_and_list()
    {
        string name = NewName("trunc");
        ChildProcess holder = Host("hold", name, "--create", "--capacity", "1048576");
        holder.WaitForLine("ready");
        // Behind the library's back: the holder would die of SIGBUS on its next access beyond 64 KiB.
        using (FileStream file = File.Open(Platform.Linux.PosixSharedMemoryProvider.PathOf(name), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            file.SetLength(64 * 1024);
        }

        (int code, string output) = Run("inspect", name, "--json");
        Assert.Equal(1, code);
        using (JsonDocument json = JsonDocument.Parse(output))
        {
            JsonElement root = json.RootElement;
            Assert.Equal("damaged", root.GetProperty("status").GetString());
            Assert.Contains("truncated", root.GetProperty("problem").GetString(), StringComparison.Ordinal);
            Assert.Equal(1 << 20, root.GetProperty("capacity").GetInt64());
            Assert.Equal(64 * 1024, root.GetProperty("objectSize").GetInt64());
        }

        (code, output) = Run("inspect", name);
        Assert.Equal(1, code);
        Assert.Contains("DAMAGED", output, StringComparison.Ordinal);

        (code, output) = Run("list");
        Assert.Equal(0, code);
        string line = output.Split('\n').Single(l => l.Contains(name, StringComparison.Ordinal));
        Assert.Contains("DAMAGED", line, StringComparison.Ordinal);

        (code, output) = Run("list", "--json");
        Assert.Equal(0, code);
        using (JsonDocument json = JsonDocument.Parse(output))
        {
            JsonElement entry = json.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
            Assert.True(entry.GetProperty("isDamaged").GetBoolean());
        }
    }

    [Fact]
    public void Inspect_json_is_the_public_model_for_a_System_V_segment_too()
    {
        string name = NewName("tool");
        using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = 128 * 1024, MaxCapacity = 128 * 1024 });
        (int code, string output) = Run("inspect", name, "--backend", "sysv", "--json");
        Assert.Equal(0, code);
        using JsonDocument json = JsonDocument.Parse(output);
        JsonElement root = json.RootElement;
        Assert.Equal("systemV", root.GetProperty("backend").GetString());
        Assert.Equal("ready", root.GetProperty("status").GetString());
        Assert.False(root.GetProperty("isDamaged").GetBoolean());
        Assert.Equal("0600", root.GetProperty("mode").GetString());
        Assert.Equal(128 * 1024, root.GetProperty("maxCapacity").GetInt64());
        Assert.Equal("attached", root.GetProperty("processes")[0].GetProperty("state").GetString());
        Assert.True(root.GetProperty("heap").GetProperty("freeBytes").GetInt64() > 0);

        (code, output) = Run("inspect", name, "--backend", "posix");
        Assert.Equal(1, code);
        Assert.Contains($"no segment '{name}'", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_comes_from_the_parser_for_the_tool_and_each_command()
    {
        (int code, string output) = Run("inspect", "--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains("inspect <name>", output, StringComparison.Ordinal);
        Assert.Contains("--backend", output, StringComparison.Ordinal);
        Assert.Contains("--json", output, StringComparison.Ordinal);
        Assert.DoesNotContain("stderr:", output, StringComparison.Ordinal);

        (code, output) = Run("-h");
        Assert.Equal(0, code);
        Assert.Contains("remove", output, StringComparison.Ordinal);
        Assert.Contains("demo", output, StringComparison.Ordinal);
        Assert.DoesNotContain("--child", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("inspect", "a", "b")]
    [InlineData("list", "extra")]
    [InlineData("demo", "--name", "no/slash")]
    public void More_bad_usage_exits_2_with_one_line(params string[] args)
    {
        (int code, string output) = Run(args);
        Assert.Equal(2, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("stderr: shmc: ", line, StringComparison.Ordinal);
    }
}
