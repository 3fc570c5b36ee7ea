using System.Buffers;
using System.Threading.Channels;
using SharedMemChannels.Topics;

namespace SharedMemChannels;

/// <content>
/// Receiving whatever the message's size (the publisher may grow the buffers at any time): into a buffer
/// writer, or a span with the size reported when it does not fit; blocking receives and the blocking
/// zero-copy borrow, each with a timeout and a cancellation token.
/// </content>
public sealed partial class TopicSubscriber
{
    /// <summary>
    /// Copies the next message into <paramref name="destination"/> if it fits; false when there is none yet
    /// (<paramref name="messageSize"/> 0), or when it is larger than <paramref name="destination"/>: then
    /// <paramref name="messageSize"/> is its size and the message stays, to be read into a buffer that large.
    /// Never throws for a size, whatever the publisher did to the buffers.
    /// </summary>
    /// <param name="destination">Room for the message.</param>
    /// <param name="info">The message's header, and the messages missed just before it (default when false).</param>
    /// <param name="messageSize">The bytes received; or, when false, the size of the message that did not fit (0 when there was none).</param>
    /// <returns>True when a message was copied.</returns>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    /// <exception cref="ObjectDisposedException">The subscriber or its segment was disposed.</exception>
    public bool TryReceive(Span<byte> destination, out TopicMessageInfo info, out int messageSize)
    {
        var sink = new SpanSink(destination);
        if (_subscription.TryReceive(ref sink, out info, out messageSize) == ReceiveOutcome.Received)
        {
            LastMessage = info;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Appends the next message to <paramref name="destination"/> (one <c>GetSpan</c> of the message's size,
    /// advanced only once the message was read whole); false when there is none yet. Any size fits.
    /// </summary>
    /// <param name="destination">Where the message's bytes go, for example an <see cref="ArrayBufferWriter{T}"/> (reset it between messages to keep only one).</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <returns>True when a message was appended.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="destination"/> gave less room than it was asked for (the message stays).</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    /// <exception cref="ObjectDisposedException">The subscriber or its segment was disposed.</exception>
    public bool TryReceive(IBufferWriter<byte> destination, out TopicMessageInfo info)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var sink = new BufferWriterSink(destination);
        switch (_subscription.TryReceive(ref sink, out info, out int size))
        {
            case ReceiveOutcome.Received:
                LastMessage = info;
                return true;
            case ReceiveOutcome.TooSmall:
                throw new InvalidOperationException($"The buffer writer gave less room than the {size} bytes asked for.");
            default:
                return false;
        }
    }

    /// <summary>
    /// Copies the next message into <paramref name="destination"/>, blocking this thread until there is one,
    /// <paramref name="timeout"/> passed, or <paramref name="cancellationToken"/> is canceled (eCAL's
    /// <c>Receive</c>): the thread sleeps on the topic's futex word or semaphore itself.
    /// </summary>
    /// <param name="destination">Room for the message: the topic's <see cref="SharedTopic.MaxMessageSize"/> (the publisher may grow the buffers at any time; a destination that became too small is an <see cref="ArgumentException"/> and the message stays to be read into a larger one: receive into an <see cref="IBufferWriter{T}"/> to never meet it).</param>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    /// <exception cref="ArgumentException">The message is larger than <paramref name="destination"/> (it stays to be read again).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    /// <exception cref="ChannelClosedException">The publisher completed the topic and nothing is left to read (its error inside, if it gave one).</exception>
    /// <exception cref="ChannelAbandonedException">The publisher died and nothing is left to read.</exception>
    /// <exception cref="ChannelRemovedException">The topic was removed and nothing is left to read.</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    public bool Receive(Span<byte> destination, TimeSpan timeout, CancellationToken cancellationToken, out TopicMessageInfo info)
    {
        var sink = new SpanSink(destination);
        return ReceiveBlocking(ref sink, timeout, destination.Length, cancellationToken, out info);
    }

    /// <summary>
    /// Appends the next message to <paramref name="destination"/>, blocking this thread until there is one or
    /// <paramref name="timeout"/> passed. Any size fits.
    /// </summary>
    /// <param name="destination">Where the message's bytes go.</param>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ChannelClosedException">The publisher completed the topic and nothing is left to read.</exception>
    public bool Receive(IBufferWriter<byte> destination, TimeSpan timeout, out TopicMessageInfo info) =>
        Receive(destination, timeout, CancellationToken.None, out info);

    /// <summary>
    /// Appends the next message to <paramref name="destination"/>, blocking this thread until there is one,
    /// <paramref name="timeout"/> passed, or <paramref name="cancellationToken"/> is canceled. Any size fits.
    /// </summary>
    /// <param name="destination">Where the message's bytes go.</param>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    /// <exception cref="ChannelClosedException">The publisher completed the topic and nothing is left to read (its error inside, if it gave one).</exception>
    /// <exception cref="ChannelAbandonedException">The publisher died and nothing is left to read.</exception>
    /// <exception cref="ChannelRemovedException">The topic was removed and nothing is left to read.</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    public bool Receive(IBufferWriter<byte> destination, TimeSpan timeout, CancellationToken cancellationToken, out TopicMessageInfo info)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var sink = new BufferWriterSink(destination);
        return ReceiveBlocking(ref sink, timeout, room: -1, cancellationToken, out info);
    }

    /// <summary>
    /// Borrows the next message in place (zero copy, see <see cref="TopicMessage"/>), blocking this thread
    /// until there is one or <paramref name="timeout"/> passed. Dispose it before borrowing the next.
    /// </summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="message">The borrowed message (default when false).</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ChannelClosedException">The publisher completed the topic and nothing is left to read.</exception>
    public bool Borrow(TimeSpan timeout, out TopicMessage message) => Borrow(timeout, CancellationToken.None, out message);

    /// <summary>
    /// Borrows the next message in place (zero copy, see <see cref="TopicMessage"/>), blocking this thread
    /// until there is one, <paramref name="timeout"/> passed, or <paramref name="cancellationToken"/> is
    /// canceled: the zero-copy counterpart of <see cref="Receive(Span{byte}, TimeSpan, CancellationToken, out TopicMessageInfo)"/>.
    /// Dispose the message before borrowing the next.
    /// </summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    /// <param name="message">The borrowed message (default when false).</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    /// <exception cref="InvalidOperationException">A message borrowed before is still held.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    /// <exception cref="ChannelClosedException">The publisher completed the topic and nothing is left to read (its error inside, if it gave one).</exception>
    /// <exception cref="ChannelAbandonedException">The publisher died and nothing is left to read.</exception>
    /// <exception cref="ChannelRemovedException">The topic was removed and nothing is left to read.</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    public bool Borrow(TimeSpan timeout, CancellationToken cancellationToken, out TopicMessage message)
    {
        long deadline = Deadline(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        while (true)
        {
            if (_subscription.TryBorrow(out message))
            {
                LastMessage = message.Info;
                return true;
            }

            if (!WaitForNext(deadline, cancellationToken))
            {
                return _subscription.TryBorrow(out message) && Received(message.Info);
            }
        }
    }

    private bool ReceiveBlocking<TSink>(ref TSink sink, TimeSpan timeout, int room, CancellationToken cancellationToken, out TopicMessageInfo info)
        where TSink : IMessageSink, allows ref struct
    {
        long deadline = Deadline(timeout);
        cancellationToken.ThrowIfCancellationRequested();
        while (true)
        {
            if (TryReceiveInto(ref sink, out info, room))
            {
                return true;
            }

            if (!WaitForNext(deadline, cancellationToken))
            {
                return TryReceiveInto(ref sink, out info, room);
            }
        }
    }

    /// <summary>One receive into <paramref name="sink"/>; a message that does not fit is the caller's error (<paramref name="room"/> bytes of a span; -1 for a buffer writer).</summary>
    private bool TryReceiveInto<TSink>(ref TSink sink, out TopicMessageInfo info, int room)
        where TSink : IMessageSink, allows ref struct
    {
        switch (_subscription.TryReceive(ref sink, out info, out int size))
        {
            case ReceiveOutcome.Received:
                return Received(info);
            case ReceiveOutcome.TooSmall when room >= 0:
                throw new ArgumentException($"The destination holds {room} bytes; the message has {size} (it stays to be read again).");
            case ReceiveOutcome.TooSmall:
                throw new InvalidOperationException($"The buffer writer gave less room than the {size} bytes asked for.");
            default:
                return false;
        }
    }

    /// <summary>Sleeps until a message may be there; false once the deadline passed.</summary>
    private bool WaitForNext(long deadline, CancellationToken cancellationToken)
    {
        long left = deadline - Environment.TickCount64;
        return left >= 0 && _subscription.Wait(deadline == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(left), cancellationToken);
    }

    private bool Received(TopicMessageInfo info)
    {
        LastMessage = info;
        return true;
    }

    private static long Deadline(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must not be negative (or Timeout.InfiniteTimeSpan).");
        }

        return timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
    }
}
