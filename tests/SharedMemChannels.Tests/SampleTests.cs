using System.Diagnostics;
using System.Text;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The ported seed programs under samples/, each run as its users run it: the built program (beside the
/// tests, as <c>dotnet Sample.dll</c>) plays its whole scenario with child processes of its own and says
/// what happened. A fresh segment name per run, removed afterwards even if the sample failed.
/// </summary>
public class SampleTests : SegmentTest
{
    [Fact]
    public void BoostStyle_creator_producers_and_consumers_pass_every_object_once_and_free_it()
    {
        string name = NewName("boost");
        (int code, string output) = RunSample("BoostStyle", "--name", name, "--count", "500");

        Assert.True(code == 0, $"exit code {code}:\n{output}");
        Assert.Contains($"creator    | ready: segment '{name}'", output, StringComparison.Ordinal);
        Assert.Contains("producer-1 | found \"MyIPCHandleQueue\"", output, StringComparison.Ordinal);
        Assert.Contains("consumer-2 | found \"MyIPCHandleQueue\"", output, StringComparison.Ordinal);
        Assert.Matches(@"consumer-\d \| object id=", output); // which consumer gets the objects is up to the scheduler
        Assert.Contains("all 1000 objects arrived exactly once", output, StringComparison.Ordinal);
        Assert.Contains("heap used bytes back at the baseline", output, StringComparison.Ordinal);
        Assert.Contains("BoostStyle: OK", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(name), "the sample left its segment behind");
    }

    [Fact]
    public void A_sample_given_a_bad_argument_says_how_to_use_it_and_fails()
    {
        (int code, string output) = RunSample("BoostStyle", "--count", "many");

        Assert.Equal(2, code);
        Assert.Contains("usage: BoostStyle", output, StringComparison.Ordinal);
    }

    /// <summary>Runs a built sample to its end (killed after a generous bound) and returns its exit code and output.</summary>
    private static (int Code, string Output) RunSample(string sample, params string[] args)
    {
        var start = new ProcessStartInfo(DotnetPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, sample + ".dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.Append("stderr: ").AppendLine(e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // The samples bound each of their own waits; this bound only catches a sample that hangs anyway.
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output)
            {
                Assert.Fail($"{sample} did not finish; it was killed. Output:\n{output}");
            }
        }

        process.WaitForExit(); // drains the output
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    private static string DotnetPath =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path
        : "dotnet";
}
