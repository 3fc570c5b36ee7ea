using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace SharedMemChannels;

/// <summary>
/// An <see cref="ISharedSerializer{T}"/> over System.Text.Json (part of the shared framework: no package).
/// Items travel as UTF-8 JSON. Use a source-generated context for trimming, AOT and speed:
/// <c>new SystemTextJsonSharedSerializer&lt;Order&gt;(MyContext.Default.Order)</c>.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
/// <remarks>
/// <para>
/// The <see cref="Identity"/> is <c>stj:</c> followed by the element type's name
/// (<see cref="Type.ToString"/>); writer and reader must also agree on the options that shape the JSON
/// (naming policy, converters), which the identity does not capture.
/// </para>
/// <para>
/// Writing reuses a <see cref="Utf8JsonWriter"/> per serializer (a second concurrent writer makes its own
/// once); what System.Text.Json itself allocates while serializing or deserializing (the value, its
/// strings) is its own.
/// </para>
/// </remarks>
public sealed class SystemTextJsonSharedSerializer<T> : ISharedSerializer<T>
{
    private readonly JsonTypeInfo<T> _typeInfo;
    private readonly JsonWriterOptions _writerOptions;
    private Utf8JsonWriter? _cachedWriter;

    /// <summary>A serializer with the metadata of a source-generated (or any) context.</summary>
    /// <param name="typeInfo">For instance <c>MyContext.Default.Order</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="typeInfo"/> is null.</exception>
    public SystemTextJsonSharedSerializer(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        _typeInfo = typeInfo;
        _writerOptions = WriterOptions(typeInfo.Options);
        Identity = "stj:" + typeof(T);
    }

    /// <summary>A serializer with <see cref="JsonSerializerOptions.Default"/> (reflection-based metadata).</summary>
    [RequiresUnreferencedCode("Reflection-based JSON metadata may need types that trimming removes; pass a source-generated JsonTypeInfo<T> instead.")]
    [RequiresDynamicCode("Reflection-based JSON metadata may need code generated at run time; pass a source-generated JsonTypeInfo<T> instead.")]
    public SystemTextJsonSharedSerializer()
        : this((JsonSerializerOptions?)null)
    {
    }

    /// <summary>A serializer with <paramref name="options"/> (reflection-based unless the options carry a source-generated resolver).</summary>
    /// <param name="options">The options; null for <see cref="JsonSerializerOptions.Default"/>.</param>
    [RequiresUnreferencedCode("Reflection-based JSON metadata may need types that trimming removes; pass a source-generated JsonTypeInfo<T> instead.")]
    [RequiresDynamicCode("Reflection-based JSON metadata may need code generated at run time; pass a source-generated JsonTypeInfo<T> instead.")]
    public SystemTextJsonSharedSerializer(JsonSerializerOptions? options)
        : this(TypeInfoFrom(options ?? JsonSerializerOptions.Default))
    {
    }

    /// <summary><c>stj:</c> and the element type's name.</summary>
    public string Identity { get; }

    /// <inheritdoc />
    public void Serialize(IBufferWriter<byte> destination, in T value)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Utf8JsonWriter writer = Interlocked.Exchange(ref _cachedWriter, null) ?? new Utf8JsonWriter(destination, _writerOptions);
        try
        {
            writer.Reset(destination);
            JsonSerializer.Serialize(writer, value, _typeInfo);
            writer.Flush();
        }
        finally
        {
            writer.Reset(); // lets go of the destination
            Volatile.Write(ref _cachedWriter, writer);
        }
    }

    /// <inheritdoc />
    public T Deserialize(ReadOnlySpan<byte> source) => JsonSerializer.Deserialize(source, _typeInfo)!;

    /// <summary>
    /// <typeparamref name="T"/>'s metadata from <paramref name="options"/>, which become read-only (as on their
    /// first use by <see cref="JsonSerializer"/>), with the reflection resolver when they name none.
    /// </summary>
    [RequiresUnreferencedCode("Reflection-based JSON metadata may need types that trimming removes.")]
    [RequiresDynamicCode("Reflection-based JSON metadata may need code generated at run time.")]
    private static JsonTypeInfo<T> TypeInfoFrom(JsonSerializerOptions options)
    {
        if (!options.IsReadOnly)
        {
            options.MakeReadOnly(populateMissingResolver: true);
        }

        return (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
    }

    private static JsonWriterOptions WriterOptions(JsonSerializerOptions options) => new()
    {
        Encoder = options.Encoder,
        Indented = options.WriteIndented,
        MaxDepth = options.MaxDepth,
        SkipValidation = true, // the serializer writes valid JSON; validation would only cost time
    };
}
