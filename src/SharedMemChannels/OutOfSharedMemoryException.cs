namespace SharedMemChannels;

/// <summary>
/// Thrown when shared memory runs out: the segment's heap has no block of the requested size and
/// cannot grow, or the system has no room left to create or grow the backing object (a full
/// <c>/dev/shm</c>). The segment is left intact and usable.
/// </summary>
public sealed class OutOfSharedMemoryException : IOException
{
    /// <summary>Creates the exception with a default message.</summary>
    public OutOfSharedMemoryException()
        : base("Out of shared memory.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What ran out, and how much was asked for.</param>
    public OutOfSharedMemoryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    /// <param name="message">What ran out, and how much was asked for.</param>
    /// <param name="innerException">The underlying error.</param>
    public OutOfSharedMemoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed allocation.</summary>
    /// <param name="requestedBytes">The size that was asked for.</param>
    /// <param name="freeBytes">The free bytes the heap had (possibly fragmented).</param>
    /// <param name="largestFreeBlock">The largest single block the heap could have given.</param>
    public OutOfSharedMemoryException(long requestedBytes, long freeBytes, long largestFreeBlock)
        : base($"Out of shared memory: {requestedBytes} bytes requested, {freeBytes} bytes free, largest free block {largestFreeBlock} bytes.")
    {
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
        LargestFreeBlock = largestFreeBlock;
    }

    /// <summary>As the public overload, with the limit that was reached and what raises it.</summary>
    internal OutOfSharedMemoryException(long requestedBytes, long freeBytes, long largestFreeBlock, string limit)
        : base($"Out of shared memory: {requestedBytes} bytes requested, {freeBytes} bytes free, largest free block {largestFreeBlock} bytes.{limit}")
    {
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
        LargestFreeBlock = largestFreeBlock;
    }

    /// <summary>The size that was asked for, or -1 when not an allocation.</summary>
    public long RequestedBytes { get; } = -1;

    /// <summary>The free bytes the heap had when the allocation failed, or -1 when not known.</summary>
    public long FreeBytes { get; } = -1;

    /// <summary>The largest block the heap could have given, or -1 when not known.</summary>
    public long LargestFreeBlock { get; } = -1;
}
