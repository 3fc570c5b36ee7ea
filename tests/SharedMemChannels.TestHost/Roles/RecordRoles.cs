using System.Globalization;

namespace SharedMemChannels.TestHost;

/// <summary>
/// An element that owns heap storage (the C++ seed's HardwareInfo shape): a string and a vector.
/// Declared the same way in the tests (OwnedElementTests); the channel matches them by layout.
/// </summary>
internal struct OwnedItem
{
    public int Id;
    public ShmString Name;
    public ShmVector<int> Values;
    public long Stamp;
}

/// <summary>
/// The test host's roles for record channels and for channels whose elements own heap storage: the
/// other process of RecordCrossProcessTests and OwnedElementTests.
/// </summary>
internal static class RecordRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("record-writer", Writer);
        roles.Add("record-reader", Reader);
        roles.Add("record-hold", Hold);
        roles.Add("owned-writer", OwnedWriter);
        roles.Add("owned-hold", OwnedHold);
    }

    /// <summary>The byte at <paramref name="index"/> of record <paramref name="n"/>: what the reader checks.</summary>
    internal static byte Pattern(long n, int index) => (byte)((n * 131) + (index * 7) + (index >> 8));

    private static int[] Sizes(Options o) =>
        [.. o.Get("sizes").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))];

    /// <summary>
    /// <c>record-writer SEGMENT --channel NAME --sizes A,B,.. --count N [--every K] [--no-complete]</c>: writes N
    /// records, record n of size sizes[n % len] filled with <see cref="Pattern"/>, with WriteAsync (waiting
    /// when full), printing "committed n=K" after every K-th write; then completes the channel (unless
    /// --no-complete) and prints "done n=N".
    /// </summary>
    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedRecordChannel channel = SharedChannel.OpenRecords(segment, o.Get("channel"));
        int[] sizes = Sizes(o);
        int count = o.GetInt("count", 1);
        int every = o.GetInt("every", int.MaxValue);
        Console.WriteLine("ready");
        for (int n = 0; n < count; n++)
        {
            ShmRecord record = channel.Writer.Allocate(sizes[n % sizes.Length]);
            Span<byte> span = record.Span;
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = Pattern(n, i);
            }

            channel.Writer.WriteAsync(record).AsTask().GetAwaiter().GetResult();
            if ((n + 1) % every == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"committed n={n + 1}"));
            }
        }

        if (!o.Has("no-complete"))
        {
            channel.Writer.Complete();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done n={count}"));
        return 0;
    }

    /// <summary>
    /// <c>record-reader SEGMENT --channel NAME --sizes A,B,.. [--every K]</c>: reads until the channel completes,
    /// checks each record's length and every byte, disposes it (printing "consumed n=K" after every K-th),
    /// and prints "read n=N bad=B".
    /// </summary>
    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedRecordChannel channel = SharedChannel.OpenRecords(segment, o.Get("channel"));
        int[] sizes = Sizes(o);
        int every = o.GetInt("every", int.MaxValue);
        Console.WriteLine("ready");
        long n = 0, bad = 0;
        Task.Run(async () =>
        {
            await foreach (ShmRecord record in channel.Reader.ReadAllAsync())
            {
                using (record)
                {
                    ReadOnlySpan<byte> span = record.Span;
                    if (span.Length != sizes[n % sizes.Length])
                    {
                        bad++;
                    }
                    else
                    {
                        for (int i = 0; i < span.Length; i++)
                        {
                            if (span[i] != Pattern(n, i))
                            {
                                bad++;
                                break;
                            }
                        }
                    }
                }

                n++;
                if (n % every == 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"consumed n={n}"));
                }
            }
        }).GetAwaiter().GetResult();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read n={n} bad={bad}"));
        return 0;
    }

    /// <summary>
    /// <c>record-hold SEGMENT --channel NAME --as writer|reader --count N [--size S]</c>: a writer allocates N
    /// records and keeps them (unwritten); a reader reads N records and keeps them (not disposed). Then
    /// prints "holding n=N" and stays until killed.
    /// </summary>
    private static int Hold(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedRecordChannel channel = SharedChannel.OpenRecords(segment, o.Get("channel"));
        int count = o.GetInt("count", 1);
        int size = o.GetInt("size", 1000);
        var held = new List<ShmRecord>();
        for (int n = 0; n < count; n++)
        {
            if (o.Get("as") == "writer")
            {
                ShmRecord record = channel.Writer.Allocate(size);
                record.Span.Fill(0x5A);
                held.Add(record);
            }
            else
            {
                held.Add(channel.Reader.ReadAsync().AsTask().GetAwaiter().GetResult());
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"holding n={held.Count}"));
        Program.ParkUntilKilled();
        GC.KeepAlive(held);
        return 3;
    }

    /// <summary>
    /// <c>owned-writer SEGMENT --channel NAME --count N [--process-owned] [--build-and-hold K]</c>: opens the
    /// channel of <see cref="OwnedItem"/> and writes N elements, each with a string "item-n" and a vector of
    /// (n % 7) + 1 ints n, n+1, ..., built in the segment (given to this process first with
    /// --process-owned), with WriteAsync; then completes it and prints "done n=N". With --build-and-hold,
    /// it then builds K more elements without writing them, prints "holding n=K" and stays until killed.
    /// </summary>
    private static int OwnedWriter(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<OwnedItem> channel = SharedChannel.Open<OwnedItem>(segment, o.Get("channel"));
        int count = o.GetInt("count", 1);
        Console.WriteLine("ready");
        Span<int> values = stackalloc int[8];
        for (int n = 0; n < count; n++)
        {
            int length = (n % 7) + 1;
            for (int i = 0; i < length; i++)
            {
                values[i] = n + i;
            }

            OwnedItem item = Build(segment, n, values[..length], o.Has("process-owned"));
            channel.Writer.WriteAsync(item).AsTask().GetAwaiter().GetResult();
        }

        channel.Writer.Complete();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done n={count}"));
        if (o.Has("build-and-hold"))
        {
            int held = o.GetInt("build-and-hold", 1);
            for (int n = 0; n < held; n++)
            {
                _ = Build(segment, n, values[..1], o.Has("process-owned"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"holding n={held}"));
            Program.ParkUntilKilled();
        }

        return 0;
    }

    private static OwnedItem Build(SharedSegment segment, int n, ReadOnlySpan<int> values, bool processOwned)
    {
        var item = new OwnedItem
        {
            Id = n,
            Name = ShmString.Create(segment, string.Create(CultureInfo.InvariantCulture, $"item-{n}")),
            Values = ShmVector.Create<int>(segment, values),
            Stamp = n * 3L,
        };
        if (processOwned)
        {
            segment.SetOwnership(item.Name.Storage, ShmOwnership.Process);
            segment.SetOwnership(item.Values.Storage, ShmOwnership.Process);
        }

        return item;
    }

    /// <summary>
    /// <c>owned-hold SEGMENT --channel NAME --count N</c>: reads N elements of <see cref="OwnedItem"/> and keeps
    /// them (not released), prints "holding n=N" and stays until killed.
    /// </summary>
    private static int OwnedHold(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<OwnedItem> channel = SharedChannel.Open<OwnedItem>(segment, o.Get("channel"));
        int count = o.GetInt("count", 1);
        for (int n = 0; n < count; n++)
        {
            _ = channel.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"holding n={count}"));
        Program.ParkUntilKilled();
        return 3;
    }
}
