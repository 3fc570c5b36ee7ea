using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharedMemChannels;
using SharedMemChannels.Diagnostics;

namespace Shmc;

/// <summary>
/// The JSON of <c>--json</c>: the public inspection model (<see cref="SegmentReport"/>) serialized as it
/// is, camelCase, enums as camelCase strings, the mode in octal, handles as numbers.
/// </summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters =
    [
        typeof(CamelCaseEnumConverter<SegmentStatus>),
        typeof(CamelCaseEnumConverter<SharedMemoryBackend>),
        typeof(CamelCaseEnumConverter<ProcessSlotState>),
        typeof(CamelCaseEnumConverter<ProcessLiveness>),
        typeof(CamelCaseEnumConverter<System.Threading.Channels.BoundedChannelFullMode>),
        typeof(CamelCaseEnumConverter<ChannelNotifier>),
        typeof(CamelCaseEnumConverter<TopicAckPolicy>),
        typeof(OctalModeConverter),
        typeof(HandleConverter),
    ])]
[JsonSerializable(typeof(SegmentReport))]
[JsonSerializable(typeof(IReadOnlyList<SegmentReport>))]
[JsonSerializable(typeof(WatchSample))]
internal sealed partial class ShmcJsonContext : JsonSerializerContext
{
    /// <summary>The context with quotes and apostrophes left readable: this JSON goes to a terminal or a script, never into HTML.</summary>
    public static ShmcJsonContext Readable => s_readable ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    /// <summary>The readable context on one line: JSON Lines, one object per sample of <c>shmc watch</c>.</summary>
    public static ShmcJsonContext Lines => s_lines ??= new(new JsonSerializerOptions(Readable.Options) { WriteIndented = false });

    private static ShmcJsonContext? s_readable;
    private static ShmcJsonContext? s_lines;

    /// <summary>Writes <paramref name="value"/> to stdout, followed by a newline.</summary>
    public static void Write<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        using Stream stdout = Console.OpenStandardOutput();
        JsonSerializer.Serialize(stdout, value, type);
        stdout.Write("\n"u8);
    }

    /// <summary>
    /// Writes <paramref name="value"/> to <paramref name="output"/> as one line. Written with a single
    /// write, so that a reader of the pipe never sees half a line and a killed watch never leaves one.
    /// </summary>
    public static void WriteLine<T>(Stream output, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        byte[] line = [.. JsonSerializer.SerializeToUtf8Bytes(value, type), (byte)'\n'];
        output.Write(line);
    }
}

/// <summary>An enum as its camelCase name.</summary>
internal sealed class CamelCaseEnumConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.CamelCase)
    where T : struct, Enum;

/// <summary>A Unix file mode as the octal string people write ("0600").</summary>
internal sealed class OctalModeConverter : JsonConverter<UnixFileMode>
{
    public override UnixFileMode Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        (UnixFileMode)Convert.ToInt32(reader.GetString() ?? "0", 8);

    public override void Write(Utf8JsonWriter writer, UnixFileMode value, JsonSerializerOptions options) =>
        writer.WriteStringValue("0" + Convert.ToString((int)value, 8).PadLeft(3, '0'));
}

/// <summary>A handle as its number (the value <see cref="ShmHandle.FromValue"/> takes).</summary>
internal sealed class HandleConverter : JsonConverter<ShmHandle>
{
    public override ShmHandle Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        ShmHandle.FromValue(reader.GetUInt64());

    public override void Write(Utf8JsonWriter writer, ShmHandle value, JsonSerializerOptions options) =>
        writer.WriteNumberValue(value.Value);
}
