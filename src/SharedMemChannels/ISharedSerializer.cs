using System.Buffers;

namespace SharedMemChannels;

/// <summary>
/// Turns values of <typeparamref name="T"/> into bytes and back, for a <see cref="SharedChannel{T}"/> of
/// any .NET type (<see cref="SharedChannel.CreateBounded{T}(SharedSegment, string, SharedChannelOptions, ISharedSerializer{T})"/>).
/// </summary>
/// <typeparam name="T">The channel's element type: any type, managed types included.</typeparam>
/// <remarks>
/// <para>
/// The channel serializes each item straight into a record of the segment's heap (the
/// <see cref="IBufferWriter{T}"/> given to <see cref="Serialize"/> writes into shared memory, growing the
/// record if needed), and the reader deserializes from the record's bytes in place
/// (<see cref="Deserialize"/>), then frees the record: no intermediate array on either side.
/// </para>
/// <para>
/// Writer and reader must agree on the format: the <see cref="Identity"/> of the serializer that made the
/// channel is stored with it (with the element type's name), and opening the channel with a serializer of
/// another identity is an <see cref="InvalidCastException"/>. Give a new identity to a serializer whose
/// format changes.
/// </para>
/// <para>
/// An implementation is called from any thread, concurrently when several threads write or read: it must
/// be thread-safe (stateless, or with per-call state).
/// </para>
/// </remarks>
public interface ISharedSerializer<T>
{
    /// <summary>
    /// Names the format (and whatever settings change it), for instance <c>stj:MyApp.Order</c> or
    /// <c>memorypack:MyApp.Order</c>: stored with the channel and compared on open (ordinal).
    /// </summary>
    string Identity { get; }

    /// <summary>
    /// Writes <paramref name="value"/> into <paramref name="destination"/> (<see cref="IBufferWriter{T}.GetSpan"/>,
    /// then <see cref="IBufferWriter{T}.Advance"/>). Must write at least one byte.
    /// </summary>
    /// <param name="destination">The record being filled, in shared memory; do not keep it past the call.</param>
    /// <param name="value">The value to write.</param>
    void Serialize(IBufferWriter<byte> destination, in T value);

    /// <summary>
    /// Reads a value from exactly the bytes <see cref="Serialize"/> wrote. The bytes are in shared memory
    /// and freed after the call: the value must not refer to them. Bytes that do not hold a value are an
    /// exception (any type); the channel reports it wrapped in an <see cref="InvalidDataException"/>.
    /// </summary>
    /// <param name="source">The record's bytes.</param>
    T Deserialize(ReadOnlySpan<byte> source);
}
