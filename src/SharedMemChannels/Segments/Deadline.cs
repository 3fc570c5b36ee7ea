namespace SharedMemChannels.Segments;

/// <summary>A point in monotonic time after which a bounded wait gives up.</summary>
internal readonly struct Deadline
{
    private readonly long _endMs;

    private Deadline(long endMs) => _endMs = endMs;

    public static Deadline After(TimeSpan timeout) =>
        new(timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds));

    public bool IsInfinite => _endMs == long.MaxValue;

    public bool HasExpired => !IsInfinite && Environment.TickCount64 >= _endMs;

    /// <summary>What is left, capped at <paramref name="cap"/>.</summary>
    public TimeSpan Remaining(TimeSpan cap)
    {
        if (IsInfinite)
        {
            return cap;
        }

        long left = Math.Max(0, _endMs - Environment.TickCount64);
        return TimeSpan.FromMilliseconds(Math.Min(left, (long)cap.TotalMilliseconds));
    }
}
