using System.Buffers;
using System.Text;
using System.Text.Json;
using MemoryPack;
using SharedMemChannels.MemoryPack;
using SharedMemChannels.TestHost;

namespace SharedMemChannels.Tests.Serialization;

/// <summary>The two shipped serializers on their own, over an ordinary buffer writer: identities, round trips, bad input.</summary>
public sealed class SerializerAdapterTests
{
    private static byte[] Serialize<T>(ISharedSerializer<T> serializer, T value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        serializer.Serialize(buffer, value);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void MemoryPack_identity_names_the_format_the_string_encoding_and_the_type()
    {
        Assert.Equal("memorypack:SharedMemChannels.TestHost.Trade", new MemoryPackSharedSerializer<Trade>().Identity);
        Assert.Equal("memorypack-utf16:SharedMemChannels.TestHost.Trade", new MemoryPackSharedSerializer<Trade>(MemoryPackSerializerOptions.Utf16).Identity);
        Assert.Equal("memorypack:System.Collections.Generic.List`1[System.String]", new MemoryPackSharedSerializer<List<string>>().Identity);
    }

    [Fact]
    public void MemoryPack_round_trips_and_refuses_bytes_that_are_not_exactly_a_value()
    {
        var serializer = new MemoryPackSharedSerializer<Trade>();
        Trade trade = Trade.Make(42, bigEvery: 1, bigSize: 1000);
        byte[] bytes = Serialize(serializer, trade);
        Assert.Equal(trade, serializer.Deserialize(bytes));

        // A value followed by bytes that are not part of it, and a value cut short.
        Assert.Throws<InvalidDataException>(() => serializer.Deserialize([.. bytes, 1, 2, 3]));
        Assert.ThrowsAny<Exception>(() => serializer.Deserialize(bytes.AsSpan(0, bytes.Length / 2)));
        Assert.ThrowsAny<Exception>(() => serializer.Deserialize([0xEE, 0xEE, 0xEE, 0xEE, 0xEE]));
    }

    [Fact]
    public void MemoryPack_writes_an_unmanaged_value_as_its_bytes()
    {
        var serializer = new MemoryPackSharedSerializer<long>();
        Assert.Equal(BitConverter.GetBytes(0x0102030405060708L), Serialize(serializer, 0x0102030405060708L));
        Assert.Equal(7L, serializer.Deserialize(BitConverter.GetBytes(7L)));
    }

    [Fact]
    public void System_Text_Json_identity_round_trip_and_reuse_of_its_writer()
    {
        var serializer = new SystemTextJsonSharedSerializer<Trade>(TradeJsonContext.Default.Trade);
        Assert.Equal("stj:SharedMemChannels.TestHost.Trade", serializer.Identity);
        for (int n = 0; n < 3; n++)
        {
            // A new destination each time: the reused Utf8JsonWriter must write into it, not the previous one.
            byte[] bytes = Serialize(serializer, Trade.Make(n));
            Assert.StartsWith("{", Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
            Assert.Equal(Trade.Make(n), serializer.Deserialize(bytes));
        }

        Assert.Throws<JsonException>(() => serializer.Deserialize("{\"Id\":"u8));
    }

    [Fact]
    public void System_Text_Json_with_options_uses_them_and_the_reflection_resolver()
    {
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
        var serializer = new SystemTextJsonSharedSerializer<Dictionary<string, int>>(options);
        Assert.True(options.IsReadOnly);
        byte[] bytes = Serialize(serializer, new Dictionary<string, int> { ["a"] = 1 });
        Assert.Equal("{\"a\":1}", Encoding.UTF8.GetString(bytes));
        Assert.Equal(1, serializer.Deserialize(bytes)["a"]);
        Assert.Equal(3, new SystemTextJsonSharedSerializer<int>().Deserialize("3"u8));
        Assert.Throws<ArgumentNullException>(() => new SystemTextJsonSharedSerializer<int>((System.Text.Json.Serialization.Metadata.JsonTypeInfo<int>)null!));
    }
}
