using System.Buffers;

namespace SharedMemChannels.Topics;

/// <summary>What a subscriber's receive found.</summary>
internal enum ReceiveOutcome
{
    /// <summary>No message yet.</summary>
    None,

    /// <summary>The next message was copied out.</summary>
    Received,

    /// <summary>The next message does not fit the room given; it stays to be read again.</summary>
    TooSmall,
}

/// <summary>Where a received message's bytes go (a caller's span, or a buffer writer).</summary>
internal interface IMessageSink
{
    /// <summary>Room for a message of <paramref name="size"/> bytes; shorter when the message does not fit (it is then left to be read again).</summary>
    Span<byte> Room(int size);

    /// <summary>The message's <paramref name="size"/> bytes were copied into the room and checked.</summary>
    void Commit(int size);
}

/// <summary>A caller's span: room of its length, whatever the message's size.</summary>
internal ref struct SpanSink(Span<byte> destination) : IMessageSink
{
    private readonly Span<byte> _destination = destination;

    public readonly Span<byte> Room(int size) => _destination;

    public readonly void Commit(int size)
    {
    }
}

/// <summary>A buffer writer: room of any size (it grows), advanced only once the message was read whole.</summary>
internal readonly struct BufferWriterSink(IBufferWriter<byte> writer) : IMessageSink
{
    public Span<byte> Room(int size) => writer.GetSpan(size);

    public void Commit(int size) => writer.Advance(size);
}
