using System.Diagnostics;
using System.Globalization;

namespace Shmc.Bench;

/// <summary>The talk with a row's second process (<c>shmc bench-peer ...</c>): its lines, its "done N", its exit.</summary>
internal static class PeerProcess
{
    /// <summary>The line a streaming peer prints when it has read everything: "done N".</summary>
    public const string DonePrefix = "done ";

    /// <summary>Reads the peer's standard output up to a line starting with <paramref name="expected"/>, bounded (a cold start on a loaded machine takes seconds).</summary>
    public static string ExpectLine(Process peer, Task<string> peerErrors, string expected, int seconds = 120)
    {
        Task<string?> line = peer.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(seconds)) || line.Result is null || !line.Result.StartsWith(expected, StringComparison.Ordinal))
        {
            bool exited = peer.WaitForExit(TimeSpan.FromSeconds(1));
            throw new InvalidOperationException(exited && peerErrors.Wait(TimeSpan.FromSeconds(5))
                ? $"the peer process exited early (exit {peer.ExitCode}): {peerErrors.Result.Trim()}"
                : line.IsCompleted ? $"the peer process said '{line.Result}', not '{expected}'" : "the peer process did not answer");
        }

        return line.Result;
    }

    /// <summary>Reads the peer's "done N" and returns N.</summary>
    public static long ReadDone(Process peer, Task<string> peerErrors) =>
        long.Parse(ExpectLine(peer, peerErrors, DonePrefix).AsSpan(DonePrefix.Length), CultureInfo.InvariantCulture);

    /// <summary>Checks that the peer read all that was written (<paramref name="unit"/> for the message) and exited cleanly.</summary>
    public static void CheckDone(Process peer, Task<string> peerErrors, long received, long written, string unit)
    {
        if (received != written)
        {
            throw new InvalidOperationException($"{written} {unit} written but {received} read by the peer");
        }

        if (!peer.WaitForExit(TimeSpan.FromSeconds(10)) || peer.ExitCode != 0)
        {
            throw new InvalidOperationException($"the peer process failed: {peerErrors.Result.Trim()}");
        }
    }
}
