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
    }
}
