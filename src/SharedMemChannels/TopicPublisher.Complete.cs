using System.Threading.Channels;

namespace SharedMemChannels;

/// <content>Completion: no message follows; subscribers in every process end once they read what is buffered.</content>
public sealed partial class TopicPublisher
{
    /// <summary>
    /// Completes the topic, as <see cref="ChannelWriter{T}.Complete(Exception?)"/> completes a channel: no
    /// message follows. Subscribers, in this and every other process, first read what is buffered; then
    /// <c>WaitToReadAsync</c> returns false (or throws <paramref name="error"/>), <c>ReadAllAsync</c> ends (or
    /// throws it), <c>Completion</c> completes (or faults with it), and blocking receives throw
    /// <see cref="ChannelClosedException"/>. Other processes see the error as a
    /// <see cref="RemoteChannelException"/> with its type name and message (an
    /// <see cref="OperationCanceledException"/> stays a cancellation). A loan still open is abandoned.
    /// Completion is final: publishing afterwards throws, from any process.
    /// </summary>
    /// <param name="error">The error to complete with, or null for a normal end.</param>
    /// <exception cref="ChannelClosedException">The topic was completed already (by this or another publisher), or removed.</exception>
    /// <exception cref="ObjectDisposedException">The publisher was disposed.</exception>
    public void Complete(Exception? error = null)
    {
        if (!TryComplete(error))
        {
            throw new ChannelClosedException($"Topic '{_core.Name}' was completed already.");
        }
    }

    /// <summary>
    /// Completes the topic like <see cref="Complete(Exception?)"/>; false (and nothing changes) when it was
    /// completed already or removed.
    /// </summary>
    /// <param name="error">The error to complete with, or null for a normal end.</param>
    /// <returns>Whether this call completed the topic.</returns>
    /// <exception cref="ObjectDisposedException">The publisher was disposed.</exception>
    public bool TryComplete(Exception? error = null)
    {
        ThrowIfDisposed();
        if (_core.IsRemoved || !_core.TryComplete(error))
        {
            return false;
        }

        _loanOpen = false;
        return true;
    }
}
