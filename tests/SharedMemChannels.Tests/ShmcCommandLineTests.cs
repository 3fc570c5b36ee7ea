using System.Text.RegularExpressions;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// shmc as a newcomer meets it: a bare <c>shmc</c>, help that says each default once, errors that speak of
/// numbers rather than .NET types, and a <c>bench --only</c> that refuses an id it does not know.
/// </summary>
public partial class ShmcCommandLineTests : SegmentTest
{
    private (int ExitCode, string Output) Run(params string[] args)
    {
        ChildProcess shmc = Shmc(args);
        int code = shmc.WaitForExit();
        return (code, shmc.Transcript);
    }

    [Fact]
    public void Bare_shmc_prints_the_help_and_exits_0()
    {
        (int code, string output) = Run();
        Assert.True(code == 0, output);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains("Commands:", output, StringComparison.Ordinal);
        Assert.Contains("inspect <name>", output, StringComparison.Ordinal);
        Assert.Contains("bench", output, StringComparison.Ordinal);
        Assert.DoesNotContain("stderr:", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("latency-spin,nope")]
    [InlineData(",")]
    public void Bench_only_with_an_unknown_id_exits_2_and_lists_the_ids(string only)
    {
        (int code, string output) = Run("bench", "--only", only);
        Assert.Equal(2, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("stderr: shmc: option --only: ", line, StringComparison.Ordinal);
        Assert.Contains(only == "," ? "no id given" : "unknown id 'nope'", line, StringComparison.Ordinal);
        // Scenarios and rows alike.
        foreach (string id in new[] { "latency-spin", "stream-mpmc", "fanout-1x4", "shared-channel", "c-spsc-ring", "record-zero-copy" })
        {
            Assert.Contains(id, line, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Bench_json_help_names_the_bench_report_and_list_json_the_segment_report()
    {
        (int code, string output) = Run("bench", "--help");
        Assert.Equal(0, code);
        string bench = Assert.Single(output.Split('\n'), l => l.TrimStart().StartsWith("--json", StringComparison.Ordinal));
        Assert.DoesNotContain("SegmentReport", bench, StringComparison.Ordinal);
        Assert.Contains("rows", bench, StringComparison.Ordinal);
        Assert.Contains("docs/benchmarks.md", bench, StringComparison.Ordinal);

        (code, output) = Run("list", "--help");
        Assert.Equal(0, code);
        Assert.Contains("SegmentReport", Assert.Single(output.Split('\n'), l => l.TrimStart().StartsWith("--json", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bench")]
    [InlineData("demo")]
    [InlineData("watch")]
    [InlineData("list")]
    [InlineData("inspect")]
    [InlineData("remove")]
    public void Help_states_each_default_once(string command)
    {
        (int code, string output) = Run(command, "--help");
        Assert.Equal(0, code);
        string[] options = [.. output.Split('\n').Where(l => l.TrimStart().StartsWith("--", StringComparison.Ordinal))];
        Assert.NotEmpty(options);
        foreach (string option in options)
        {
            Assert.True(Default().Count(option) <= 1, $"default said twice: {option}");
        }
    }

    [Theory]
    [InlineData("bench", "--seconds", "abc")]
    [InlineData("bench", "--messages", "many")]
    [InlineData("bench", "--messages", "1.5")]
    [InlineData("bench", "--stream-messages", "99999999999")]
    [InlineData("demo", "--seconds", "soon")]
    [InlineData("demo", "--messages", "-3")]
    [InlineData("watch", "x", "--count", "abc")]
    public void A_value_that_is_not_a_number_says_so_without_naming_a_dotnet_type(params string[] args)
    {
        (int code, string output) = Run(args);
        Assert.Equal(2, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"option {args[^2]} takes a", line, StringComparison.Ordinal);
        Assert.Contains("number", line, StringComparison.Ordinal);
        Assert.Contains($"not '{args[^1]}'", line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
    }

    [GeneratedRegex("default", RegexOptions.IgnoreCase)]
    private static partial Regex Default();
}
