using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// Any call on a disposed channel, object or segment is <see cref="ObjectDisposedException"/>, including a
/// race with another thread's dispose, and disposing a segment under pending waits ends them with it: never
/// a fault on an unmapped page. Each case runs in a test host child, so that the old behaviour (the process
/// aborted, exit 134) shows as a crashed child with its transcript, not as a dead test run.
/// </summary>
public sealed class DisposalTests : SegmentTest
{
    /// <summary>Runs a role to its end and returns its "op=" lines, failing with the transcript if it crashed.</summary>
    private Dictionary<string, string> Run(params string[] args)
    {
        using ChildProcess child = Host(args);
        int exit = child.WaitForExit(TimeSpan.FromMinutes(5));
        Assert.True(exit == 0, $"The child ended with exit code {exit} (134: it faulted on an unmapped page):\n{child.Transcript}");
        var lines = child.Transcript.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("op=", StringComparison.Ordinal))
            .Select(l => l["op=".Length..].Trim())
            .ToList();
        Assert.Contains("done", child.Transcript, StringComparison.Ordinal);
        return lines.ToDictionary(l => l[..l.LastIndexOf(' ')], l => l[(l.LastIndexOf(' ') + 1)..]);
    }

    [Theory]
    [InlineData("spsc")]
    [InlineData("mpmc")]
    [InlineData("unbounded")]
    [InlineData("prioritized")]
    [InlineData("records")]
    [InlineData("serialized")]
    public void Every_channel_operation_after_its_segment_was_disposed_is_ObjectDisposedException(string kind)
    {
        Dictionary<string, string> results = Run("after-dispose", NewName("disp"), "--kind", kind);
        string[] operations = ["TryWrite", "TryRead", "Count", "ReadAsync", "WaitToReadAsync", "WriteAsync", "WaitToWriteAsync", "TryComplete", "Completion"];
        Assert.All(operations, op => Assert.Equal((op, "ObjectDisposedException"), (op, results[op])));
        Assert.Equal("ok", results["Dispose"]); // disposing the channel afterwards is allowed and does nothing
    }

    [Fact]
    public void Synchronization_objects_and_containers_after_their_segment_was_disposed_throw_ObjectDisposedException()
    {
        foreach (string kind in new[] { "sync", "objects" })
        {
            Dictionary<string, string> results = Run("after-dispose", NewName("disp"), "--kind", kind);
            Assert.NotEmpty(results);
            Assert.All(results, r => Assert.Equal((r.Key, "ObjectDisposedException"), (r.Key, r.Value)));
        }
    }

    [Theory]
    [InlineData("spsc", "segment")]
    [InlineData("mpmc", "segment")]
    [InlineData("unbounded", "segment")]
    [InlineData("prioritized", "segment")]
    [InlineData("records", "segment")]
    [InlineData("serialized", "segment")]
    public void Threads_racing_a_dispose_end_with_ObjectDisposedException(string kind, string target)
    {
        Dictionary<string, string> results = Run("dispose-race", NewName("race"), "--kind", kind, "--target", target, "--rounds", "12");
        // The writer and the reader of each round loop until the dispose stops them: nothing else may end them.
        Assert.Equal(["race ObjectDisposedException"], results.Select(r => $"{r.Key}").ToArray());
        Assert.Equal("24", results["race ObjectDisposedException"]);
    }

    [Fact]
    public void Disposing_a_segment_under_pending_and_blocked_waits_ends_each_with_ObjectDisposedException()
    {
        Dictionary<string, string> results = Run("dispose-under-waits", NewName("waits"), "--rounds", "8", "--waits", "150");
        string[] waits = ["channel.ReadAsync", "event.WaitAsync", "semaphore.WaitAsync", "event.Wait", "semaphore.Wait(token)", "mutex.WaitAsync"];
        Assert.All(waits, w => Assert.True(results.ContainsKey($"{w} ObjectDisposedException"), $"{w}: {string.Join(", ", results.Select(r => $"{r.Key}={r.Value}"))}"));
        Assert.All(results.Keys, k => Assert.EndsWith(" ObjectDisposedException", k, StringComparison.Ordinal));
    }
}
