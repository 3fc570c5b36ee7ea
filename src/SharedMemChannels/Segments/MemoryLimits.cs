namespace SharedMemChannels.Segments;

/// <summary>
/// The words of every <see cref="OutOfSharedMemoryException"/>: which limit was reached and which option (or
/// system setting) raises it, so that nobody has to guess a size.
/// </summary>
internal static class MemoryLimits
{
    public static string Describe(SharedMemoryBackend backend, long capacity, long maxCapacity)
    {
        if (backend == SharedMemoryBackend.SystemV)
        {
            return $" Segment of {capacity} bytes: System V segments do not grow; make it with a larger SegmentOptions.Capacity, or use the POSIX backend.";
        }

        // The heap grows the segment as far as it may before it fails: the limit is the tmpfs only when it
        // has less room left than the segment may still take.
        (long Total, long Free)? space = Platform.Linux.PosixSharedMemoryProvider.FileSystemSpace();
        if (space is { } s && s.Free < maxCapacity - capacity)
        {
            return $" The segment has {capacity} of its MaxCapacity of {maxCapacity} bytes, and {Platform.Linux.PosixSharedMemoryProvider.Directory} has only {s.Free} of {s.Total} bytes free: its tmpfs size is the limit (free space there, or raise it with mount -o remount,size=...).";
        }

        return $" The segment has {capacity} bytes and may grow to its MaxCapacity of {maxCapacity} bytes, not enough for this: make it with a larger SegmentOptions.MaxCapacity (at most {SegmentOptions.MaxSupportedCapacity}).";
    }
}
