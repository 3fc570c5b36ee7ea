using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Shmc.Bench;

/// <summary>One side of a ping-pong: sends a message and waits for its echo.</summary>
internal interface IPingPong
{
    /// <summary>
    /// Sends message <paramref name="sequence"/> and waits (spinning) for its echo. False when no echo
    /// came before <paramref name="hardDeadline"/> (a <see cref="Stopwatch"/> timestamp).
    /// </summary>
    bool RoundTrip(long sequence, long hardDeadline);
}

/// <summary>Time bounds and the ping-pong loop every spinning latency row shares.</summary>
internal static class PingPong
{
    /// <summary>Warm-up round trips (or messages) before the measured ones: as in the C references.</summary>
    public static int WarmupCount(long messages) => (int)Math.Clamp(messages / 5, 100, 20_000);

    /// <summary>A duration in <see cref="Stopwatch"/> ticks.</summary>
    public static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);

    /// <summary>
    /// Warm-up (at most a fifth of the time cap, not measured), then up to <paramref name="messages"/>
    /// timed round trips or the time cap, whichever comes first; every wait is bounded by the cap plus
    /// two seconds, after which the peer is taken for dead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static LatencyResult Measure(IPingPong side, int messages, double seconds)
    {
        long cap = Ticks(seconds);
        long warmEnd = Stopwatch.GetTimestamp() + (cap / 5);
        long hard = warmEnd + Ticks(2);
        int warmup = WarmupCount(messages);
        long sequence = 0;
        for (; sequence < warmup && Stopwatch.GetTimestamp() < warmEnd; sequence++)
        {
            if (!side.RoundTrip(sequence, hard))
            {
                throw new TimeoutException("no echo from the other side during the warm-up");
            }
        }

        long[] roundTrips = new long[messages];
        int count = 0;
        long deadline = Stopwatch.GetTimestamp() + cap;
        hard = deadline + Ticks(2);
        while (count < messages)
        {
            long t0 = Stopwatch.GetTimestamp();
            if (!side.RoundTrip(sequence++, hard))
            {
                throw new TimeoutException("no echo from the other side");
            }

            long t1 = Stopwatch.GetTimestamp();
            roundTrips[count++] = t1 - t0;
            if (t1 > deadline)
            {
                break; // the time cap: report what was measured
            }
        }

        return LatencyResult.FromRoundTrips(roundTrips.AsSpan(0, count));
    }

    /// <summary>The row's notes for a count that the time cap may have cut short.</summary>
    public static string CountNote(long measured, long requested, string unit) => measured >= requested
        ? $"{measured:N0} {unit}"
        : $"{measured:N0} of {requested:N0} {unit}: stopped by the time cap";
}
