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
    public void RaftLibStyle_producer_sends_records_to_a_consumer_process_with_two_threads_and_the_channels_are_removed()
    {
        string name = NewName("raftlib");
        (int code, string output) = RunSample("RaftLibStyle", "--name", name, "--count", "3000");

        Assert.True(code == 0, $"exit code {code}:\n{output}");
        Assert.Contains("producer: completed push sequence: 6000 records", output, StringComparison.Ordinal);
        Assert.Contains("consumer   | done with consumer channel (channel-a): 3000 records", output, StringComparison.Ordinal);
        Assert.Contains("consumer   | done with consumer channel (channel-b): 3000 records", output, StringComparison.Ordinal);
        Assert.Contains("all intact and in order; this thread's heap cache holds", output, StringComparison.Ordinal);
        Assert.Contains("producer: both channels removed", output, StringComparison.Ordinal);
        Assert.Contains("producer: heap used bytes back at the baseline", output, StringComparison.Ordinal);
        Assert.Contains("RaftLibStyle: OK", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(name), "the sample left its segment behind");
    }

    [Fact]
    public void HardwareInfo_elements_with_strings_and_a_vector_cross_processes_with_no_sizing_and_are_freed_once()
    {
        string name = NewName("hwinfo");
        (int code, string output) = RunSample("HardwareInfo", "--name", name, "--count", "500");

        Assert.True(code == 0, $"exit code {code}:\n{output}");
        Assert.Contains("client: reply 1: Fabrikam Accelerator X100 rev 1, serial SN-01-000001, firmware 1.1.1, 8 GiB, 2 features: #0 feature-0 v1 on, #1 feature-1 v2 off", output, StringComparison.Ordinal);
        Assert.Contains("50000 features", output, StringComparison.Ordinal);
        Assert.Contains("service    | answered 500 requests", output, StringComparison.Ordinal);
        Assert.Contains("client: 500 replies, every string and all", output, StringComparison.Ordinal);
        Assert.Contains("when a reply needed room; no size was given anywhere", output, StringComparison.Ordinal);
        Assert.Contains("client: heap used bytes back at the baseline", output, StringComparison.Ordinal);
        Assert.Contains("HardwareInfo: OK", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(SharedChannel.SegmentPrefix + name + ".ret"), "the sample left its reply segment behind");
        Assert.False(SharedSegment.Exists(SharedChannel.SegmentPrefix + name + ".cmd"), "the sample left its command segment behind");
    }

    [Fact]
    public void EcalStyle_publisher_reaches_a_copying_and_a_zero_copy_subscriber_losslessly_and_a_late_joiner_gets_the_history()
    {
        string name = NewName("ecal");
        (int code, string output) = RunSample("EcalStyle", "--name", name, "--count", "200");

        Assert.True(code == 0, $"exit code {code}:\n{output}");
        Assert.Contains("callback   | ready: subscribed to 'camera_frames'", output, StringComparison.Ordinal);
        Assert.Contains("zero-copy  | ready: subscribed to 'camera_frames'", output, StringComparison.Ordinal);
        Assert.Contains("publisher  | sent id=100 full frame of 65568 bytes (copied): buffers grew from 1280 to 65568 bytes", output, StringComparison.Ordinal);
        Assert.Contains("publisher  | sent id=101 full frame of 65568 bytes (loaned, written in place)", output, StringComparison.Ordinal);
        Assert.Matches(@"zero-copy  \| frame id=101 clock=102 time=\S+ size=65568 zerocopy=yes hash=[0-9a-f]{16} dropped=0 seq=101 pixels=65536", output);
        Assert.Contains("callback   | received 202 messages, in order, drops=0", output, StringComparison.Ordinal);
        Assert.Contains("zero-copy  | received 202 messages, in order, drops=0", output, StringComparison.Ordinal);
        Assert.Contains("late-joiner| received 4 messages from the history, drops=0, 0 more waiting", output, StringComparison.Ordinal);
        Assert.Contains("all 2 subscribers received all 202 messages in order with 0 drops", output, StringComparison.Ordinal);
        Assert.Contains("late joiner received the last 4 messages from the history (ids 198..201)", output, StringComparison.Ordinal);
        Assert.Contains("buffers grew from 1280 to 65568 bytes for the full frame", output, StringComparison.Ordinal);
        Assert.Contains("topic 'camera_frames' destroyed with its last holder", output, StringComparison.Ordinal);
        Assert.Contains("EcalStyle: OK", output, StringComparison.Ordinal);
        Assert.False(SharedSegment.Exists(name), "the sample left its segment behind");
    }

    [Theory]
    [InlineData("BoostStyle")]
    [InlineData("RaftLibStyle")]
    [InlineData("HardwareInfo")]
    [InlineData("EcalStyle")]
    public void A_sample_given_a_bad_argument_says_how_to_use_it_and_fails(string sample)
    {
        (int code, string output) = RunSample(sample, "--count", "many");

        Assert.Equal(2, code);
        Assert.Contains($"usage: {sample}", output, StringComparison.Ordinal);
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
