using System.Threading.Channels;

namespace SharedMemChannels;

/// <summary>
/// A pending read (write) of a <see cref="SharedChannel{T}"/> gave up because every process that wrote
/// to (read from) the channel has died without completing it: the shared-memory form of
/// <see cref="AbandonedMutexException"/>. The channel itself is not completed: a process that starts
/// writing (reading) again lets the others go on, and a reader may simply wait again.
/// </summary>
/// <remarks>A <see cref="ChannelClosedException"/>, so that code that ends a read loop on closure ends here too.</remarks>
public sealed class ChannelAbandonedException : ChannelClosedException
{
    /// <summary>Creates the exception.</summary>
    public ChannelAbandonedException()
        : base("Every peer process of the channel died without completing it.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public ChannelAbandonedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ChannelAbandonedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
