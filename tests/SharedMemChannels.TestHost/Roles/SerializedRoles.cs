using System.Globalization;
using System.Text.Json.Serialization;
using MemoryPack;
using SharedMemChannels.MemoryPack;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The record type of the serialized-channel tests: a few fields and a string. Public so that the tests
/// use this very type (a serialized channel stores its element type's name: both sides must agree).
/// </summary>
[MemoryPackable]
public sealed partial record Trade(long Id, string Symbol, double Price, int Quantity, long Ticks)
{
    /// <summary>
    /// Trade <paramref name="n"/>: the same on both sides. Every <paramref name="bigEvery"/>-th one (when
    /// above 0) has a symbol of <paramref name="bigSize"/> characters, non-ASCII included.
    /// </summary>
    public static Trade Make(long n, int bigEvery = 0, int bigSize = 0)
    {
        string symbol = bigEvery > 0 && n % bigEvery == 0
            ? string.Create(bigSize, n, static (span, seed) =>
            {
                for (int i = 0; i < span.Length; i++)
                {
                    span[i] = (i % 50) == 0 ? 'é' : (char)('a' + ((seed + i) % 26));
                }
            })
            : string.Create(CultureInfo.InvariantCulture, $"SYM-{n % 97}-ü");
        return new Trade(n, symbol, (n * 0.25) + 1, (int)(n % 1000), 638_000_000_000_000_000 + n);
    }
}

/// <summary>The System.Text.Json source-generated metadata of <see cref="Trade"/>.</summary>
[JsonSerializable(typeof(Trade))]
public sealed partial class TradeJsonContext : JsonSerializerContext;

/// <summary>The serializers the roles and tests name by a word.</summary>
public static class TradeSerializers
{
    /// <summary>"memorypack" or "stj" (source-generated context).</summary>
    public static ISharedSerializer<Trade> For(string format) => format switch
    {
        "memorypack" => new MemoryPackSharedSerializer<Trade>(),
        "stj" => new SystemTextJsonSharedSerializer<Trade>(TradeJsonContext.Default.Trade),
        _ => throw new ArgumentException($"unknown format '{format}'", nameof(format)),
    };
}

/// <summary>The test host's roles for serialized channels: the other process of SerializedChannelTests.</summary>
internal static class SerializedRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("serial-writer", Writer);
        roles.Add("serial-reader", Reader);
        roles.Add("serial-open", OpenOnly);
    }

    /// <summary>
    /// <c>serial-writer SEGMENT --channel NAME --format memorypack|stj --count N [--big-every K --big-size S] [--no-complete]</c>:
    /// writes trades 0..N-1 (<see cref="Trade.Make"/>) with WriteAsync, completes the channel (unless --no-complete)
    /// and prints "done n=N".
    /// </summary>
    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<Trade> channel = SharedChannel.Open(segment, o.Get("channel"), TradeSerializers.For(o.Get("format")));
        int count = o.GetInt("count", 1);
        int bigEvery = o.GetInt("big-every", 0);
        int bigSize = o.GetInt("big-size", 0);
        Console.WriteLine("ready");
        for (int n = 0; n < count; n++)
        {
            channel.Writer.WriteAsync(Trade.Make(n, bigEvery, bigSize)).AsTask().GetAwaiter().GetResult();
        }

        if (!o.Has("no-complete"))
        {
            channel.Writer.Complete();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done n={count}"));
        return 0;
    }

    /// <summary>
    /// <c>serial-reader SEGMENT --channel NAME --format memorypack|stj [--big-every K --big-size S]</c>: reads with
    /// <c>await foreach</c> until the channel completes, compares trade n with <see cref="Trade.Make"/>, and prints
    /// "read n=N bad=B".
    /// </summary>
    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<Trade> channel = SharedChannel.Open(segment, o.Get("channel"), TradeSerializers.For(o.Get("format")));
        int bigEvery = o.GetInt("big-every", 0);
        int bigSize = o.GetInt("big-size", 0);
        Console.WriteLine("ready");
        return ReadAll(channel, bigEvery, bigSize).GetAwaiter().GetResult();
    }

    private static async Task<int> ReadAll(SharedChannel<Trade> channel, int bigEvery, int bigSize)
    {
        long n = 0;
        long bad = 0;
        await foreach (Trade trade in channel.Reader.ReadAllAsync())
        {
            if (trade != Trade.Make(n, bigEvery, bigSize))
            {
                bad++;
            }

            n++;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read n={n} bad={bad}"));
        return 0;
    }

    /// <summary>
    /// <c>serial-open SEGMENT --channel NAME --format memorypack|stj|unmanaged|records</c>: opens the channel as asked
    /// (a serialized channel of trades, a channel of unmanaged longs, or a record channel) and prints "opened";
    /// a refusal is the "error Type message" line.
    /// </summary>
    private static int OpenOnly(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        string name = o.Get("channel");
        IDisposable channel = o.Get("format") switch
        {
            "unmanaged" => SharedChannel.Open<long>(segment, name),
            "records" => SharedChannel.OpenRecords(segment, name),
            string format => SharedChannel.Open(segment, name, TradeSerializers.For(format)),
        };
        using (channel)
        {
            Console.WriteLine("opened");
        }

        return 0;
    }
}
