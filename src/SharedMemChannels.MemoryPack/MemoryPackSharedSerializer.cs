using System.Buffers;
using MemoryPack;

namespace SharedMemChannels.MemoryPack;

/// <summary>
/// An <see cref="ISharedSerializer{T}"/> over MemoryPack: items of any MemoryPack-serializable type (a
/// <c>[MemoryPackable]</c> partial class, record or struct; unmanaged structs; strings, arrays and
/// collections) travel in MemoryPack's binary format, written straight into the channel's records.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
/// <example>
/// <code>
/// [MemoryPackable]
/// public partial record Order(long Id, string Symbol, decimal Price, int Quantity);
///
/// var serializer = new MemoryPackSharedSerializer&lt;Order&gt;();
/// using var channel = SharedChannel.OpenOrCreateBounded(segment, "orders", new SharedChannelOptions(1024), serializer);
/// await channel.Writer.WriteAsync(new Order(1, "ABC", 10.5m, 100));
/// </code>
/// </example>
/// <remarks>
/// <para>
/// The <see cref="Identity"/> is <c>memorypack:</c> and the element type's name (<see cref="Type.ToString"/>),
/// with <c>memorypack-utf16:</c> for options that write strings as UTF-16. MemoryPack's version tolerance
/// rules (<c>[MemoryPackable(GenerateType.VersionTolerant)]</c>) are the way to change a type that live
/// processes share; the identity does not change with the type's members.
/// </para>
/// <para>
/// Serializing allocates nothing of its own (MemoryPack's writer state is pooled); deserializing
/// allocates the value and what it holds (its strings, arrays), as MemoryPack always does.
/// </para>
/// </remarks>
public sealed class MemoryPackSharedSerializer<T> : ISharedSerializer<T>
{
    private readonly MemoryPackSerializerOptions _options;

    /// <summary>A serializer with MemoryPack's default options (strings as UTF-8).</summary>
    public MemoryPackSharedSerializer()
        : this(null)
    {
    }

    /// <summary>A serializer with <paramref name="options"/>.</summary>
    /// <param name="options">MemoryPack's options; null for <see cref="MemoryPackSerializerOptions.Default"/>.</param>
    public MemoryPackSharedSerializer(MemoryPackSerializerOptions? options)
    {
        _options = options ?? MemoryPackSerializerOptions.Default;
        Identity = (_options.StringEncoding == StringEncoding.Utf16 ? "memorypack-utf16:" : "memorypack:") + typeof(T);
    }

    /// <summary><c>memorypack:</c> (or <c>memorypack-utf16:</c>) and the element type's name.</summary>
    public string Identity { get; }

    /// <inheritdoc />
    public void Serialize(IBufferWriter<byte> destination, in T value)
    {
        ArgumentNullException.ThrowIfNull(destination);
        MemoryPackSerializer.Serialize(destination, value, _options);
    }

    /// <inheritdoc />
    /// <exception cref="MemoryPackSerializationException">The bytes do not hold a <typeparamref name="T"/>.</exception>
    /// <exception cref="InvalidDataException">The bytes hold a value followed by bytes that are not part of it.</exception>
    public T Deserialize(ReadOnlySpan<byte> source)
    {
        T? value = default;
        int read = MemoryPackSerializer.Deserialize(source, ref value, _options);
        if (read != source.Length)
        {
            throw new InvalidDataException($"A MemoryPack {typeof(T)} took {read} of the item's {source.Length} bytes: the item was not written by this serializer for this type.");
        }

        return value!;
    }
}
