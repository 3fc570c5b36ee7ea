using System.Runtime.InteropServices;
using System.Threading.Channels;
using SharedMemChannels.Topics;

namespace SharedMemChannels;

/// <summary>
/// A publish/subscribe topic in a segment (eCAL's shared-memory transport, iceoryx2's publish-subscribe):
/// every message goes to every subscriber. One publisher process at a time; any number of subscriber
/// processes joining and leaving at any time. Each message carries eCAL's header (size, id, clock, time,
/// optional xxHash64, zero-copy flag). The publisher cycles through <see cref="SharedTopicOptions.BufferCount"/>
/// buffers and never waits for a slow subscriber (unless an acknowledgement timeout asks it to, for at
/// most that long): a subscriber that falls behind by more than the buffers loses the oldest messages and
/// sees the gap (<see cref="TopicMessageInfo.Dropped"/>, <see cref="TopicSubscriber.Drops"/>).
/// </summary>
public sealed class SharedTopic : IDisposable
{
    private readonly TopicCore _core;
    private int _disposed;

    private SharedTopic(TopicCore core) => _core = core;

    /// <summary>The process's hold on the topic (for tests that damage it on purpose).</summary>
    internal TopicCore Core => _core;

    /// <summary>The topic's name in its segment.</summary>
    public string Name => _core.Name;

    /// <summary>The buffers the publisher cycles through.</summary>
    public int BufferCount => _core.BufferCount;

    /// <summary>
    /// The payload bytes a buffer holds now: MinSize + Reserve at first; a larger message makes the publisher
    /// grow the buffers (subscribers follow), so a destination for <see cref="TopicSubscriber.TryReceive(Span{byte}, out TopicMessageInfo)"/>
    /// should be sized from this when the message is read.
    /// </summary>
    public int MaxMessageSize => _core.BufferSize;

    /// <summary>Whether a live process holds the publisher end (a dead publisher is observable here).</summary>
    public bool IsPublisherAlive => _core.IsPublisherAlive;

    /// <summary>Messages published so far (the next message's id).</summary>
    public long MessageCount => Volatile.Read(ref _core.Control.NextSequence);

    /// <summary>Creates the topic <paramref name="name"/> in <paramref name="segment"/>; fails if it exists.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-'.</param>
    /// <param name="options">Buffers, sizes, history, acknowledgement, hashing.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="InvalidOperationException">A topic of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">The segment has no room for the buffers.</exception>
    public static SharedTopic Create(SharedSegment segment, string name, SharedTopicOptions options) =>
        new(TopicCore.Open(segment, name, options, TopicCore.OpenMode.Create));

    /// <summary>Opens the existing topic <paramref name="name"/>, with the options it was made with.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="KeyNotFoundException">There is no such topic.</exception>
    public static SharedTopic Open(SharedSegment segment, string name) =>
        new(TopicCore.Open(segment, name, null, TopicCore.OpenMode.Open));

    /// <summary>Opens the topic <paramref name="name"/>, or creates it: exactly one process creates; other options than the topic's are an <see cref="ArgumentException"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <param name="options">The options to create with, and to check an existing topic against.</param>
    public static SharedTopic OpenOrCreate(SharedSegment segment, string name, SharedTopicOptions options) =>
        new(TopicCore.Open(segment, name, options, TopicCore.OpenMode.OpenOrCreate));

    /// <summary>Becomes the topic's publisher: refused while another live process publishes; taken over from a dead or disposed one.</summary>
    /// <exception cref="InvalidOperationException">Another live process (or this one) holds the publisher end.</exception>
    public TopicPublisher CreatePublisher()
    {
        AddHolder();
        try
        {
            _core.TakePublisherLease();
        }
        catch
        {
            _core.ReleaseHolder();
            throw;
        }

        return new TopicPublisher(_core);
    }

    /// <summary>Subscribes to the topic's byte messages: the subscriber first receives the last <see cref="SharedTopicOptions.HistoryDepth"/> messages.</summary>
    public TopicSubscriber Subscribe() => new(_core, AddSubscriber());

    /// <summary>Subscribes to messages of unmanaged <typeparamref name="T"/> (published with <see cref="TopicPublisher.Publish{T}(in T)"/>).</summary>
    /// <typeparam name="T">The messages' type.</typeparam>
    public TopicSubscriber<T> Subscribe<T>()
        where T : unmanaged
    {
        ThrowIfDisposed();
        if (Marshal.SizeOf<T>() > _core.BufferSize)
        {
            throw new ArgumentException($"{typeof(T).Name} ({Marshal.SizeOf<T>()} bytes) does not fit topic '{Name}''s buffers of {_core.BufferSize} bytes.");
        }

        TopicMessageTypes.ClaimUnmanaged<T>(_core);
        return new TopicSubscriber<T>(_core, AddSubscriber());
    }

    /// <summary>Subscribes to messages of any <typeparamref name="T"/> published with <see cref="TopicPublisher.Publish{T}(T, ISharedSerializer{T})"/> and a serializer of the same identity.</summary>
    /// <typeparam name="T">The messages' type.</typeparam>
    /// <param name="serializer">Reads each message's bytes back into a <typeparamref name="T"/>.</param>
    public SerializedTopicSubscriber<T> Subscribe<T>(ISharedSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        ThrowIfDisposed();
        TopicMessageTypes.ClaimSerialized(_core, serializer);
        return new SerializedTopicSubscriber<T>(_core, AddSubscriber(), serializer);
    }

    /// <summary>The description of the typed messages the topic carries (set by its first typed publisher or subscriber), or null while it carries bytes only.</summary>
    public string? MessageType => _core.StoredMessageType();

    /// <summary>Whether the topic was removed (<see cref="Remove(SharedSegment, string)"/>): nothing more is published; what is buffered can still be read.</summary>
    public bool IsRemoved => _core.IsRemoved;

    /// <summary>
    /// Removes the topic <paramref name="name"/> (RaftLib's <c>remove_channel</c>): nothing more can be
    /// published, subscribers read what is buffered and then see <see cref="ChannelRemovedException"/>, it
    /// cannot be opened again, and its memory goes when the last process holding it lets go (at once if
    /// none does). Works on persistent topics too.
    /// </summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <returns>False when there is no such topic (or it was removed already).</returns>
    public static bool Remove(SharedSegment segment, string name)
    {
        ArgumentNullException.ThrowIfNull(segment);
        SharedName.Validate(name, nameof(name));
        segment.ThrowIfDisposed();
        return TopicCore.Remove(segment.Attachment, name);
    }

    /// <summary>Whether <paramref name="segment"/> has a topic <paramref name="name"/> that is not removed.</summary>
    /// <param name="segment">The segment to look in.</param>
    /// <param name="name">The topic's name.</param>
    public static bool Exists(SharedSegment segment, string name)
    {
        ArgumentNullException.ThrowIfNull(segment);
        SharedName.Validate(name, nameof(name));
        segment.ThrowIfDisposed();
        return TopicCore.Exists(segment.Attachment, name);
    }

    /// <summary>
    /// Lets go of this view of the topic. The topic's reference goes with the last of this view, its
    /// publisher and its subscribers; a topic without references is removed from the segment unless it
    /// persists.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _core.ReleaseHolder();
        }
    }

    private int AddSubscriber()
    {
        AddHolder();
        try
        {
            return _core.AddSubscriber();
        }
        catch
        {
            _core.ReleaseHolder();
            throw;
        }
    }

    private void AddHolder()
    {
        ThrowIfDisposed();
        if (_core.IsRemoved)
        {
            throw new ChannelRemovedException($"Topic '{Name}' was removed.");
        }

        ObjectDisposedException.ThrowIf(!_core.TryAddHolder(), this);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || _core.Segment.IsDetached, this);
}

/// <summary>The publisher end of a <see cref="SharedTopic"/> (one live process at a time).</summary>
public sealed partial class TopicPublisher : IDisposable
{
    private readonly TopicCore _core;
    private int _disposed;

    internal TopicPublisher(TopicCore core) => _core = core;

    /// <summary>Publishes a message to every subscriber; returns its id.</summary>
    /// <param name="payload">At most the topic's <see cref="SharedTopic.MaxMessageSize"/> bytes.</param>
    /// <exception cref="ArgumentException">The payload does not fit a buffer.</exception>
    /// <exception cref="ObjectDisposedException">The publisher was disposed.</exception>
    public long Publish(ReadOnlySpan<byte> payload)
    {
        ThrowIfDisposed();
        ThrowIfLoanOpen();
        return _core.Publish(payload, zeroCopy: false);
    }

    /// <summary>Publishes an unmanaged value as a message; returns its id.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="value">The value.</param>
    public long Publish<T>(in T value)
        where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfLoanOpen();
        if (_claimedFingerprint != TopicMessageTypes.UnmanagedFingerprint<T>())
        {
            _claimedFingerprint = TopicMessageTypes.ClaimUnmanaged<T>(_core);
        }

        return _core.Publish(Segments.SegmentMemory.BytesOf(in value), zeroCopy: false);
    }

    /// <summary>Publishes any value, serialized (into a buffer of this publisher's, reused), as a message; returns its id.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="serializer">Writes the value's bytes; subscribers read them with a serializer of the same identity.</param>
    /// <exception cref="ArgumentException">The serialized value does not fit a buffer.</exception>
    public long Publish<T>(T value, ISharedSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        ThrowIfDisposed();
        ThrowIfLoanOpen();
        if (!ReferenceEquals(serializer, _claimedSerializer))
        {
            _claimedFingerprint = TopicMessageTypes.ClaimSerialized(_core, serializer);
            _claimedSerializer = serializer;
        }

        _serialized ??= new System.Buffers.ArrayBufferWriter<byte>(_core.BufferSize);
        _serialized.ResetWrittenCount();
        serializer.Serialize(_serialized, in value);
        return _core.Publish(_serialized.WrittenSpan, zeroCopy: false);
    }

    private System.Buffers.ArrayBufferWriter<byte>? _serialized;
    private ulong _claimedFingerprint;
    private object? _claimedSerializer;

    /// <summary>
    /// Loans the next message's buffer (zero copy): fill <see cref="TopicLoan.Span"/> in place, then
    /// <see cref="TopicLoan.Send(int)"/> it; the message carries the zero-copy flag. Subscribers do not see
    /// it until it is sent; one loan at a time.
    /// </summary>
    /// <param name="size">The most bytes the message will have (the buffers grow if needed).</param>
    /// <exception cref="InvalidOperationException">A loan is open already.</exception>
    public TopicLoan Loan(int size)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (_loanOpen)
        {
            throw new InvalidOperationException("A loaned message is open: send it first.");
        }

        long buffer = _core.BeginMessage(size, out long sequence);
        _loanOpen = true;
        return new TopicLoan(this, buffer, sequence, size);
    }

    private bool _loanOpen;

    private void ThrowIfLoanOpen()
    {
        if (_loanOpen)
        {
            throw new InvalidOperationException("A loaned message is open: send it before publishing another.");
        }
    }

    internal Span<byte> LoanSpan(long buffer, int size) => _core.PayloadOf(buffer, size);

    internal long SendLoan(long buffer, long sequence, int length)
    {
        ThrowIfDisposed();
        if (!_loanOpen)
        {
            throw _core.IsCompleted ? _core.ClosedException() : new InvalidOperationException("This loan was sent already.");
        }

        _loanOpen = false;
        return _core.EndMessage(buffer, sequence, length, zeroCopy: true);
    }

    /// <summary>Gives the publisher end back (a new publisher may take it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            if (!_core.Segment.IsDetached)
            {
                _core.ReleasePublisherLease();
            }

            _core.ReleaseHolder();
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0 || _core.Segment.IsDetached, this);
}

/// <summary>
/// A subscriber of a <see cref="SharedTopic"/>'s byte messages, and a <see cref="ChannelReader{T}"/> of
/// them (<c>await foreach</c>, each message a new array). <see cref="TryReceive(Span{byte}, out TopicMessageInfo)"/> copies into a span of
/// yours without allocating.
/// </summary>
public sealed partial class TopicSubscriber : ChannelReader<byte[]>, IDisposable
{
    private readonly TopicSubscription _subscription;

    internal TopicSubscriber(TopicCore core, int row) => _subscription = new TopicSubscription(core, row);

    /// <summary>Messages this subscriber missed (overwritten before it read them).</summary>
    public long Drops => _subscription.Drops;

    /// <summary>The header of the last message received.</summary>
    public TopicMessageInfo LastMessage { get; private set; }

    /// <inheritdoc />
    public override bool CanCount => true;

    /// <inheritdoc />
    public override int Count => _subscription.Count;

    /// <inheritdoc />
    public override Task Completion => _subscription.Completion;

    /// <summary>Copies the next message into <paramref name="destination"/>; false when there is none yet.</summary>
    /// <param name="destination">Room for the message: the topic's <see cref="SharedTopic.MaxMessageSize"/> (the publisher may grow the buffers at any time; a destination that became too small is an <see cref="ArgumentException"/> and the message stays to be read into a larger one).</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    /// <exception cref="ArgumentException">The message is larger than <paramref name="destination"/> (it stays to be read again).</exception>
    public bool TryReceive(Span<byte> destination, out TopicMessageInfo info) => _subscription.TryReceive(destination, out info);

    /// <summary>
    /// Copies the next message into <paramref name="destination"/>, blocking this thread until there is one
    /// or <paramref name="timeout"/> passed (eCAL's <c>Receive</c> with a timeout): the thread sleeps on the
    /// topic's futex word or semaphore itself, the shortest way from the publisher's signal to the data.
    /// For code that must not block a thread, use <see cref="ChannelReader{T}.WaitToReadAsync"/>.
    /// </summary>
    /// <param name="destination">Room for the message: the topic's <see cref="SharedTopic.MaxMessageSize"/> (the publisher may grow the buffers at any time; a destination that became too small is an <see cref="ArgumentException"/> and the message stays to be read into a larger one).</param>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="info">The message's header, and the messages missed just before it.</param>
    /// <returns>False when the timeout passed without a message.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than infinite).</exception>
    /// <exception cref="ChannelAbandonedException">The publisher died and nothing is left to read.</exception>
    /// <exception cref="ChannelRemovedException">The topic was removed and nothing is left to read.</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    public bool Receive(Span<byte> destination, TimeSpan timeout, out TopicMessageInfo info) =>
        Receive(destination, timeout, CancellationToken.None, out info);

    /// <summary>
    /// Borrows the next message in place, without copying (see <see cref="TopicMessage"/>); false when there
    /// is none yet. Dispose it before borrowing the next.
    /// </summary>
    /// <param name="message">The borrowed message.</param>
    /// <exception cref="InvalidOperationException">A message borrowed before is still held.</exception>
    /// <exception cref="InvalidDataException">The message does not match its hash.</exception>
    public bool TryBorrow(out TopicMessage message) => _subscription.TryBorrow(out message);

    /// <inheritdoc />
    public override bool TryRead(out byte[] item)
    {
        if (!_subscription.TryReceiveScratch(out byte[] buffer, out TopicMessageInfo info))
        {
            item = [];
            return false;
        }

        LastMessage = info;
        item = buffer.AsSpan(0, info.Size).ToArray();
        return true;
    }

    /// <inheritdoc />
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _subscription.WaitAsync(cancellationToken);

    /// <summary>Leaves the topic (the publisher no longer waits for this subscriber).</summary>
    public void Dispose() => _subscription.Dispose();
}

/// <summary>A subscriber of a <see cref="SharedTopic"/>'s messages of unmanaged <typeparamref name="T"/>, and a <see cref="ChannelReader{T}"/> of them.</summary>
/// <typeparam name="T">The messages' type.</typeparam>
public sealed class TopicSubscriber<T> : ChannelReader<T>, IDisposable
    where T : unmanaged
{
    private readonly TopicSubscription _subscription;

    internal TopicSubscriber(TopicCore core, int row) => _subscription = new TopicSubscription(core, row);

    /// <summary>Messages this subscriber missed (overwritten before it read them).</summary>
    public long Drops => _subscription.Drops;

    /// <summary>The header of the last message received.</summary>
    public TopicMessageInfo LastMessage { get; private set; }

    /// <inheritdoc />
    public override bool CanCount => true;

    /// <inheritdoc />
    public override int Count => _subscription.Count;

    /// <inheritdoc />
    public override Task Completion => _subscription.Completion;

    /// <inheritdoc />
    public override bool TryRead(out T item)
    {
        item = default;
        Span<byte> bytes = Segments.SegmentMemory.WritableBytesOf(ref item);
        if (!_subscription.TryReceiveScratch(out byte[] buffer, out TopicMessageInfo info))
        {
            return false;
        }

        if (info.Size != bytes.Length)
        {
            throw new InvalidCastException($"Message {info.Id} has {info.Size} bytes; {typeof(T).Name} has {bytes.Length}.");
        }

        buffer.AsSpan(0, info.Size).CopyTo(bytes);
        LastMessage = info;
        return true;
    }

    /// <inheritdoc />
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _subscription.WaitAsync(cancellationToken);

    /// <summary>Leaves the topic (the publisher no longer waits for this subscriber).</summary>
    public void Dispose() => _subscription.Dispose();
}

/// <summary>A subscriber of a <see cref="SharedTopic"/>'s serialized messages, and a <see cref="ChannelReader{T}"/> of them.</summary>
/// <typeparam name="T">The messages' type.</typeparam>
public sealed class SerializedTopicSubscriber<T> : ChannelReader<T>, IDisposable
{
    private readonly TopicSubscription _subscription;
    private readonly ISharedSerializer<T> _serializer;

    internal SerializedTopicSubscriber(TopicCore core, int row, ISharedSerializer<T> serializer)
    {
        _subscription = new TopicSubscription(core, row);
        _serializer = serializer;
    }

    /// <summary>Messages this subscriber missed (overwritten before it read them).</summary>
    public long Drops => _subscription.Drops;

    /// <summary>The header of the last message received.</summary>
    public TopicMessageInfo LastMessage { get; private set; }

    /// <inheritdoc />
    public override bool CanCount => true;

    /// <inheritdoc />
    public override int Count => _subscription.Count;

    /// <inheritdoc />
    public override Task Completion => _subscription.Completion;

    /// <inheritdoc />
    /// <exception cref="InvalidDataException">The message's bytes do not deserialize (or do not match their hash).</exception>
    public override bool TryRead(out T item)
    {
        if (!_subscription.TryReceiveScratch(out byte[] buffer, out TopicMessageInfo info))
        {
            item = default!;
            return false;
        }

        LastMessage = info;
        try
        {
            item = _serializer.Deserialize(buffer.AsSpan(0, info.Size));
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"Message {info.Id} does not deserialize with {_serializer.Identity}: {e.Message}", e);
        }

        return true;
    }

    /// <inheritdoc />
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _subscription.WaitAsync(cancellationToken);

    /// <summary>Leaves the topic (the publisher no longer waits for this subscriber).</summary>
    public void Dispose() => _subscription.Dispose();
}

/// <summary>A topic buffer loaned to the publisher (<see cref="TopicPublisher.Loan(int)"/>): written in place, then sent.</summary>
public readonly struct TopicLoan
{
    private readonly TopicPublisher? _publisher;
    private readonly long _buffer;
    private readonly long _sequence;

    internal TopicLoan(TopicPublisher publisher, long buffer, long sequence, int size)
    {
        _publisher = publisher;
        _buffer = buffer;
        _sequence = sequence;
        Size = size;
    }

    /// <summary>The bytes asked for.</summary>
    public int Size { get; }

    /// <summary>The message's id once sent.</summary>
    public long Id => _sequence;

    /// <summary>The buffer to fill, in shared memory.</summary>
    public Span<byte> Span => _publisher is null ? throw new InvalidOperationException("A default loan has no buffer.") : _publisher.LoanSpan(_buffer, Size);

    /// <summary>Publishes the first <paramref name="length"/> bytes of the loan to every subscriber; returns the message's id.</summary>
    /// <param name="length">At most <see cref="Size"/>.</param>
    /// <exception cref="InvalidOperationException">The loan was sent already.</exception>
    public long Send(int length)
    {
        if (_publisher is null)
        {
            throw new InvalidOperationException("A default loan cannot be sent.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Size);
        return _publisher.SendLoan(_buffer, _sequence, length);
    }

    /// <summary>Publishes the whole loan.</summary>
    public long Send() => Send(Size);
}
