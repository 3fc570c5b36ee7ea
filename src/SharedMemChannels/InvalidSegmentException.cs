namespace SharedMemChannels;

/// <summary>
/// Thrown when a named shared-memory object is not a usable segment of this library: not a segment
/// at all, another layout version, a damaged header, or sizes that disagree with the backing object.
/// Also thrown when a structure inside a segment (a heap block, a handle, a container) holds an
/// offset or length that cannot be right.
/// </summary>
public sealed class InvalidSegmentException : IOException
{
    /// <summary>Creates the exception with a default message.</summary>
    public InvalidSegmentException()
        : base("The shared-memory object is not a valid SharedMemChannels segment.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public InvalidSegmentException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The underlying error.</param>
    public InvalidSegmentException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a named segment.</summary>
    /// <param name="segmentName">The segment's name.</param>
    /// <param name="message">What is wrong.</param>
    public InvalidSegmentException(string segmentName, string message)
        : base($"Segment '{segmentName}': {message}")
    {
        SegmentName = segmentName;
    }

    /// <summary>The name of the segment, when known.</summary>
    public string? SegmentName { get; }
}
