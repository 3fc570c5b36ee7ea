using System.Threading.Channels;

namespace SharedMemChannels;

/// <summary>
/// The channel was removed by name (<see cref="SharedChannel.Remove(SharedSegment, string)"/>, RaftLib's
/// <c>remove_channel</c>) while this process used it. Removal completes the channel for every process:
/// writes fail with this exception at once; readers already attached may drain what is queued, then reads
/// fail with it and <see cref="ChannelReader{T}.Completion"/> faults with it. Nobody can open the channel
/// again; what it still holds is freed once the last process attached to it lets go.
/// </summary>
/// <remarks>A <see cref="ChannelClosedException"/>, so that code that ends a loop on closure ends here too.</remarks>
public sealed class ChannelRemovedException : ChannelClosedException
{
    /// <summary>Creates the exception.</summary>
    public ChannelRemovedException()
        : base("The channel was removed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public ChannelRemovedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ChannelRemovedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
