namespace SharedMemChannels;

/// <summary>
/// The stand-in for an exception that completed a <see cref="SharedChannel{T}"/> in another process:
/// exceptions cannot cross processes as objects, so the other processes see its type name and message.
/// It is the inner exception of the <see cref="System.Threading.Channels.ChannelClosedException"/> that
/// reads and writes throw, the exception <c>WaitToReadAsync</c> throws, and the fault of <c>Completion</c>.
/// </summary>
public sealed class RemoteChannelException : Exception
{
    /// <summary>Creates the exception without details.</summary>
    public RemoteChannelException()
        : this("unknown", string.Empty)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public RemoteChannelException(string message)
        : this("unknown", message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RemoteChannelException(string message, Exception innerException)
        : base(message, innerException)
    {
        RemoteTypeName = "unknown";
        RemoteMessage = message;
    }

    /// <summary>Creates the stand-in for a remote exception.</summary>
    /// <param name="remoteTypeName">The full name of the exception's type in the process that completed the channel.</param>
    /// <param name="remoteMessage">Its message.</param>
    public RemoteChannelException(string remoteTypeName, string remoteMessage)
        : base($"{remoteTypeName}: {remoteMessage}")
    {
        RemoteTypeName = remoteTypeName;
        RemoteMessage = remoteMessage;
    }

    /// <summary>The full name of the original exception's type.</summary>
    public string RemoteTypeName { get; }

    /// <summary>The original exception's message.</summary>
    public string RemoteMessage { get; }
}
