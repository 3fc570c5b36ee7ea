using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Xunit.Abstractions;
using MemoryPack;
using SharedMemChannels.MemoryPack;
using SharedMemChannels.Serialization;
using SharedMemChannels.TestHost;
using SharedMemChannels.Tests.Infrastructure;

#pragma warning disable CA2012 // Use ValueTasks correctly: pending operations are held to check they are pending.

namespace SharedMemChannels.Tests.Serialization;

/// <summary>
/// Channels of any .NET type (<see cref="ISharedSerializer{T}"/>): a record type with a string through
/// MemoryPack and System.Text.Json (source-generated), in one process and across processes (children are
/// test host roles, Roles/SerializedRoles.cs); identity and kind mismatches refused; values that outgrow
/// the first record; payloads that do not deserialize; completion, cancellation, drops; the heap back at
/// its baseline after each; no allocation by the channel on the write path.
/// </summary>
public sealed class SerializedChannelTests(ITestOutputHelper output) : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    public static TheoryData<string> Formats => new() { "memorypack", "stj" };

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    /// <summary>A segment whose directory table exists already, so that a destroyed channel leaves the used bytes where they were.</summary>
    private SharedSegment NewWarmSegment(string tag, long capacity = 4 << 20)
    {
        SharedSegment segment = NewSegment(tag, capacity: capacity, max: 64 << 20);
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose();
        return segment;
    }

    private SharedChannel<Trade> NewTrades(SharedSegment segment, string format, int capacity = 8, BoundedChannelFullMode mode = BoundedChannelFullMode.Wait, int maxRecordSize = SharedChannelOptions.DefaultMaxRecordSize, string name = "trades", Action<Trade>? dropped = null) =>
        Track(SharedChannel.CreateBounded(segment, name, new SharedChannelOptions(capacity) { FullMode = mode, MaxRecordSize = maxRecordSize, SpinCount = 0, YieldCount = 0 }, TradeSerializers.For(format), dropped));

    // ---------------------------------------------------------------- one process

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Trades_written_are_read_back_equal_and_their_records_freed(string format)
    {
        SharedSegment segment = NewWarmSegment("ser");
        long baseline = Used(segment);
        using (SharedChannel<Trade> channel = SharedChannel.CreateBounded(segment, "trades", new SharedChannelOptions(8), TradeSerializers.For(format)))
        {
            Assert.Equal(TradeSerializers.For(format).Identity, channel.SerializerIdentity);
            Assert.Contains(format == "stj" ? "stj:SharedMemChannels.TestHost.Trade" : "memorypack:SharedMemChannels.TestHost.Trade", channel.ToString(), StringComparison.Ordinal);
            Assert.False(channel.Reader.CanPeek);
            for (int n = 0; n < 5; n++)
            {
                Assert.True(channel.Writer.TryWrite(Trade.Make(n)));
            }

            await channel.Writer.WriteAsync(Trade.Make(5));
            Assert.Equal(6, channel.Reader.Count);
            Assert.True(Used(segment) > baseline, "queued records use the heap");
            for (int n = 0; n < 5; n++)
            {
                Assert.True(channel.Reader.TryRead(out Trade? trade));
                Assert.Equal(Trade.Make(n), trade);
            }

            Assert.Equal(Trade.Make(5), await channel.Reader.ReadAsync());
            Assert.False(channel.Reader.TryRead(out _));
        }

        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Any_type_works_strings_lists_and_reflection_based_json()
    {
        SharedSegment segment = NewSegment("anyt");
        using SharedChannel<string> strings = SharedChannel.CreateBounded(segment, "strings", new SharedChannelOptions(4), new MemoryPackSharedSerializer<string>());
        using SharedChannel<List<int>> lists = SharedChannel.CreateBounded(segment, "lists", new SharedChannelOptions(4), new SystemTextJsonSharedSerializer<List<int>>(new JsonSerializerOptions()));
        Assert.True(strings.Writer.TryWrite("héllo"));
        Assert.True(strings.Writer.TryWrite(null!));
        Assert.True(lists.Writer.TryWrite([1, 2, 3]));
        Assert.True(strings.Reader.TryRead(out string? s1));
        Assert.True(strings.Reader.TryRead(out string? s2));
        Assert.True(lists.Reader.TryRead(out List<int>? list));
        Assert.Equal("héllo", s1);
        Assert.Null(s2);
        Assert.Equal([1, 2, 3], list);
        Assert.StartsWith("stj:System.Collections.Generic.List`1[System.Int32]", lists.SerializerIdentity, StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_process_view_in_the_same_process_opens_with_the_same_serializer()
    {
        SharedSegment segment = NewSegment("reopen");
        SharedChannel<Trade> made = NewTrades(segment, "memorypack");
        using SharedChannel<Trade> opened = SharedChannel.Open(segment, "trades", new MemoryPackSharedSerializer<Trade>());
        using SharedChannel<Trade> both = SharedChannel.OpenOrCreateBounded(segment, "trades", new SharedChannelOptions(8) { SpinCount = 0, YieldCount = 0 }, new MemoryPackSharedSerializer<Trade>());
        Assert.True(made.Writer.TryWrite(Trade.Make(1)));
        Assert.True(opened.Reader.TryRead(out Trade? trade));
        Assert.Equal(Trade.Make(1), trade);
        Assert.Equal(8, both.Capacity);
    }

    // ---------------------------------------------------------------- mismatches

    [Fact]
    public void Opening_with_a_serializer_of_another_identity_is_refused()
    {
        SharedSegment segment = NewSegment("mism");
        NewTrades(segment, "memorypack");
        InvalidCastException e = Assert.Throws<InvalidCastException>(() => SharedChannel.Open(segment, "trades", TradeSerializers.For("stj")));
        Assert.Contains("memorypack:SharedMemChannels.TestHost.Trade", e.Message, StringComparison.Ordinal);
        Assert.Contains("stj:SharedMemChannels.TestHost.Trade", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenOrCreateBounded(segment, "trades", new SharedChannelOptions(8) { SpinCount = 0, YieldCount = 0 }, TradeSerializers.For("stj")));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open(segment, "trades", new MemoryPackSharedSerializer<Trade>(MemoryPackSerializerOptions.Utf16)));
    }

    [Fact]
    public void Opening_for_another_element_type_with_the_same_serializer_format_is_refused()
    {
        SharedSegment segment = NewSegment("mist");
        NewTrades(segment, "memorypack");
        InvalidCastException e = Assert.Throws<InvalidCastException>(() => SharedChannel.Open(segment, "trades", new FixedIdentity<string>(new MemoryPackSharedSerializer<string>(), "memorypack:SharedMemChannels.TestHost.Trade")));
        Assert.Contains("System.String", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Serialized_unmanaged_and_record_channels_never_open_as_one_another()
    {
        SharedSegment segment = NewSegment("kind");
        NewTrades(segment, "memorypack", name: "serial");
        Track(SharedChannel.CreateBounded<long>(segment, "plain", new SharedChannelOptions(8)));
        Track(SharedChannel.CreateRecords(segment, "records", new SharedChannelOptions(8)));

        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<long>(segment, "serial"));
        Assert.Throws<InvalidCastException>(() => SharedChannel.OpenRecords(segment, "serial"));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open(segment, "plain", new MemoryPackSharedSerializer<long>()));
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open(segment, "records", TradeSerializers.For("memorypack")));

        // A serialized channel whose ring slot happens to have the layout of the unmanaged type asked for is still refused (by its kind).
        Assert.Throws<InvalidCastException>(() => SharedChannel.Open<SlotLookalike>(segment, "serial"));
    }

    [Theory]
    [InlineData("stj")]
    [InlineData("unmanaged")]
    [InlineData("records")]
    public void A_child_that_opens_a_MemoryPack_channel_another_way_is_refused(string format)
    {
        SharedSegment segment = NewSegment("xmism");
        NewTrades(segment, "memorypack");
        using ChildProcess child = HostOnBackend("serial-open", segment.Name, "--channel", "trades", "--format", format);
        string line = child.WaitForLine("error", Generous);
        Assert.StartsWith("error InvalidCastException", line, StringComparison.Ordinal);
        Assert.Equal(1, child.Finish(Generous));

        using ChildProcess good = HostOnBackend("serial-open", segment.Name, "--channel", "trades", "--format", "memorypack");
        good.WaitForLine("opened", Generous);
        Assert.Equal(0, good.Finish(Generous));
    }

    [Fact]
    public void An_empty_serializer_identity_is_refused()
    {
        SharedSegment segment = NewSegment("noid");
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded(segment, "x", new SharedChannelOptions(4), new FixedIdentity<int>(new MemoryPackSharedSerializer<int>(), string.Empty)));
        Assert.Throws<ArgumentNullException>(() => SharedChannel.CreateBounded(segment, "x", new SharedChannelOptions(4), (ISharedSerializer<int>)null!));
        Assert.False(SharedChannel.Exists(segment, "x"));
    }

    [Fact]
    public void Inspection_and_shmc_inspect_show_the_element_type_and_the_serializer()
    {
        SharedSegment segment = NewSegment("insp");
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack", maxRecordSize: 8192);
        Assert.True(channel.Writer.TryWrite(Trade.Make(1)));
        SharedMemChannels.Diagnostics.ChannelReport report = Assert.Single(SharedMemChannels.Diagnostics.SegmentDiagnostics.Inspect(segment.Name).Channels);
        Assert.Equal("serialized", report.ElementKind);
        Assert.Equal("SharedMemChannels.TestHost.Trade", report.ElementTypeName);
        Assert.Equal("memorypack:SharedMemChannels.TestHost.Trade", report.SerializerIdentity);
        Assert.Equal(8192, report.MaxRecordSize);
        Assert.Equal(1, report.Count);

        ChildProcess shmc = Shmc("inspect", segment.Name);
        Assert.Equal(0, shmc.WaitForExit());
        Assert.Contains("serialized by memorypack:SharedMemChannels.TestHost.Trade", shmc.Transcript, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- sizes

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Values_that_outgrow_the_first_record_arrive_whole(string format)
    {
        SharedSegment segment = NewWarmSegment("big", capacity: 16 << 20);
        SharedChannel<Trade> channel = NewTrades(segment, format, capacity: 4);
        long baseline = Used(segment);
        int[] sizes = [10, 300_000, 20, 1000, 150_000, 5];
        for (int i = 0; i < sizes.Length; i++)
        {
            Trade trade = Trade.Make(i, bigEvery: 1, bigSize: sizes[i]);
            await channel.Writer.WriteAsync(trade).AsTask().WaitAsync(Generous);
            Assert.True(channel.Reader.TryRead(out Trade? read));
            Assert.Equal(trade, read);
        }

        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void An_item_above_the_largest_record_is_an_ArgumentException_and_leaves_nothing_behind()
    {
        SharedSegment segment = NewWarmSegment("huge");
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack", maxRecordSize: 4096);
        long baseline = Used(segment);
        Trade huge = Trade.Make(1, bigEvery: 1, bigSize: 5000);
        ArgumentException e = Assert.Throws<ArgumentException>(() => channel.Writer.TryWrite(huge));
        Assert.Contains("4096", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => channel.Writer.WriteAsync(huge).AsTask().GetAwaiter().GetResult());
        Assert.Equal(baseline, Used(segment));
        Assert.Equal(0, channel.Reader.Count);

        Assert.True(channel.Writer.TryWrite(Trade.Make(2)));
        Assert.True(channel.Reader.TryRead(out Trade? trade));
        Assert.Equal(Trade.Make(2), trade);
        Assert.Equal(baseline, Used(segment));
    }

    // ---------------------------------------------------------------- bad payloads, failing serializers

    [Fact]
    public async Task A_record_that_does_not_deserialize_fails_its_read_with_InvalidDataException_and_the_channel_goes_on()
    {
        SharedSegment segment = NewWarmSegment("bad");
        SharedChannel<Trade> reader = NewTrades(segment, "memorypack");
        long baseline = Used(segment);

        // A writer that claims MemoryPack's identity and writes bytes that are not a MemoryPack Trade.
        var liar = new FixedIdentity<Trade>(new GarbageSerializer<Trade>(), reader.SerializerIdentity!);
        using SharedChannel<Trade> writer = SharedChannel.Open(segment, "trades", liar);
        Assert.True(writer.Writer.TryWrite(Trade.Make(1)));
        Assert.True(reader.Writer.TryWrite(Trade.Make(2)));

        InvalidDataException e = Assert.Throws<InvalidDataException>(() => reader.Reader.TryRead(out _));
        Assert.Contains("'trades'", e.Message, StringComparison.Ordinal);
        Assert.Contains("memorypack:", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.InnerException);
        Assert.True(reader.Reader.TryRead(out Trade? good));
        Assert.Equal(Trade.Make(2), good);

        // The same through ReadAsync, pending first.
        ValueTask<Trade> pending = reader.Reader.ReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.True(writer.Writer.TryWrite(Trade.Make(3)));
        await Assert.ThrowsAsync<InvalidDataException>(async () => await pending.AsTask().WaitAsync(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void A_serializer_that_throws_while_writing_leaves_no_record_and_the_channel_goes_on()
    {
        SharedSegment segment = NewWarmSegment("thr");
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack");
        long baseline = Used(segment);
        var failing = new FailingSerializer(new MemoryPackSharedSerializer<Trade>());
        using SharedChannel<Trade> writer = SharedChannel.Open(segment, "trades", failing);
        Assert.Throws<NotSupportedException>(() => writer.Writer.TryWrite(FailingSerializer.Poison));
        Assert.Throws<NotSupportedException>(() => writer.Writer.WriteAsync(FailingSerializer.Poison).AsTask().GetAwaiter().GetResult());
        Assert.Equal(baseline, Used(segment));
        Assert.True(writer.Writer.TryWrite(Trade.Make(9)));
        Assert.True(channel.Reader.TryRead(out Trade? trade));
        Assert.Equal(Trade.Make(9), trade);
        Assert.Throws<InvalidOperationException>(() => SharedChannel.Open(segment, "trades", new FixedIdentity<Trade>(new EmptySerializer<Trade>(), channel.SerializerIdentity!)).Writer.TryWrite(trade!));
        Assert.Equal(baseline, Used(segment));
    }

    // ---------------------------------------------------------------- completion, cancellation, drops, destruction

    [Fact]
    public async Task Completion_reaches_the_reader_after_the_items_and_writes_after_it_fail()
    {
        SharedSegment segment = NewWarmSegment("done");
        SharedChannel<Trade> channel = NewTrades(segment, "stj");
        long baseline = Used(segment);
        Assert.True(channel.Writer.TryWrite(Trade.Make(1)));
        channel.Writer.Complete(new TimeoutException("upstream"));
        Assert.False(channel.Writer.TryWrite(Trade.Make(2)));
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await channel.Writer.WriteAsync(Trade.Make(3)));
        Assert.Equal(Trade.Make(1), await channel.Reader.ReadAsync());
        await Assert.ThrowsAsync<TimeoutException>(async () => await channel.Reader.WaitToReadAsync());
        await Assert.ThrowsAsync<TimeoutException>(() => channel.Reader.Completion.WaitAsync(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task Canceled_pending_reads_and_writes_leave_nothing_behind()
    {
        SharedSegment segment = NewWarmSegment("cancel");
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack", capacity: 1);
        long baseline = Used(segment);

        using (var cts = new CancellationTokenSource())
        {
            ValueTask<Trade> read = channel.Reader.ReadAsync(cts.Token);
            Assert.False(read.IsCompleted);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await read);
        }

        Assert.True(channel.Writer.TryWrite(Trade.Make(1)));
        Assert.False(channel.Writer.TryWrite(Trade.Make(2))); // full
        long oneQueued = Used(segment);
        using (var cts = new CancellationTokenSource())
        {
            ValueTask write = channel.Writer.WriteAsync(Trade.Make(2), cts.Token);
            Assert.False(write.IsCompleted);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await write);
        }

        Assert.Equal(oneQueued, Used(segment)); // the canceled write's record was freed

        // A pending write goes through once the reader makes room.
        ValueTask pending = channel.Writer.WriteAsync(Trade.Make(3));
        Assert.False(pending.IsCompleted);
        Assert.Equal(Trade.Make(1), await channel.Reader.ReadAsync());
        await pending.AsTask().WaitAsync(Generous);
        Assert.Equal(Trade.Make(3), await channel.Reader.ReadAsync());
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void A_drop_mode_hands_the_dropped_items_to_the_callback_and_frees_their_records()
    {
        SharedSegment segment = NewWarmSegment("drop");
        var dropped = new List<Trade>();
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack", capacity: 2, mode: BoundedChannelFullMode.DropOldest, dropped: dropped.Add);
        long baseline = Used(segment);
        for (int n = 0; n < 5; n++)
        {
            Assert.True(channel.Writer.TryWrite(Trade.Make(n)));
        }

        Assert.Equal([Trade.Make(0), Trade.Make(1), Trade.Make(2)], dropped);
        Assert.True(channel.Reader.TryRead(out Trade? a));
        Assert.True(channel.Reader.TryRead(out Trade? b));
        Assert.Equal([Trade.Make(3), Trade.Make(4)], new[] { a, b });
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Records_still_queued_when_the_last_reference_goes_are_freed()
    {
        SharedSegment segment = NewWarmSegment("gone");
        long baseline = Used(segment);
        SharedChannel<Trade> channel = SharedChannel.CreateBounded(segment, "trades", new SharedChannelOptions(16) { RetainUndelivered = false }, TradeSerializers.For("memorypack"));
        for (int n = 0; n < 10; n++)
        {
            Assert.True(channel.Writer.TryWrite(Trade.Make(n, bigEvery: 3, bigSize: 2000)));
        }

        channel.Dispose();
        Assert.False(SharedChannel.Exists(segment, "trades"));
        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task An_unbounded_serialized_channel_takes_writes_without_a_reader_and_gives_them_back_in_order(string format)
    {
        SharedSegment segment = NewWarmSegment("unb", capacity: 8 << 20);
        long baseline = Used(segment);
        using (SharedChannel<Trade> channel = SharedChannel.CreateUnbounded(segment, "trades", new SharedChannelOptions { ChunkCapacity = 64 }, TradeSerializers.For(format)))
        {
            Assert.True(channel.IsUnbounded);
            using SharedChannel<Trade> other = SharedChannel.OpenOrCreateUnbounded(segment, "trades", new SharedChannelOptions { ChunkCapacity = 64 }, TradeSerializers.For(format));
            Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded(segment, "trades", new SharedChannelOptions(64), TradeSerializers.For(format)));
            for (int n = 0; n < 1000; n++)
            {
                Assert.True(channel.Writer.TryWrite(Trade.Make(n)));
            }

            await channel.Writer.WriteAsync(Trade.Make(1000));
            Assert.Equal(1001, other.Reader.Count);
            for (int n = 0; n <= 1000; n++)
            {
                Assert.Equal(Trade.Make(n), await other.Reader.ReadAsync());
            }
        }

        Assert.Equal(baseline, Used(segment));
    }

    // ---------------------------------------------------------------- allocation

    [Fact]
    public void Writing_and_reading_an_unmanaged_payload_through_MemoryPack_allocates_nothing()
    {
        SharedSegment segment = NewSegment("alloc");
        using SharedChannel<Tick> channel = SharedChannel.CreateBounded(segment, "ticks", new SharedChannelOptions(8), new MemoryPackSharedSerializer<Tick>());
        long sum = Churn(channel, 1000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        sum += Churn(channel, 10_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sum > 0);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Writing_a_trade_allocates_nothing_of_the_channels_and_reading_one_allocates_the_trade(string format)
    {
        SharedSegment segment = NewSegment("alloct");
        SharedChannel<Trade> channel = NewTrades(segment, format, capacity: 64);
        Trade trade = Trade.Make(7);
        for (int round = 0; round < 20; round++)
        {
            WriteRead(channel, trade, 50);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            Assert.True(channel.Writer.TryWrite(trade));
        }

        long written = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++)
        {
            Assert.True(channel.Reader.TryRead(out _));
        }

        long read = (GC.GetAllocatedBytesForCurrentThread() - before) / 50;
        output.WriteLine($"{format}: writing allocates {written / 50} B per trade, reading {read} B per trade (the Trade and its string)");

        // The channel allocates nothing to write (its buffer writer and, for System.Text.Json, the
        // Utf8JsonWriter are reused); neither serializer allocates to write this trade.
        Assert.Equal(0, written);

        // Reading allocates the Trade and its string (the deserializer's), no more than a few hundred bytes.
        Assert.InRange(read, 1, 400);
    }

    private static void WriteRead(SharedChannel<Trade> channel, Trade trade, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.True(channel.Writer.TryWrite(trade));
        }

        for (int i = 0; i < count; i++)
        {
            Assert.True(channel.Reader.TryRead(out _));
        }
    }

    private static long Churn(SharedChannel<Tick> channel, int rounds)
    {
        long sum = 0;
        for (int i = 1; i <= rounds; i++)
        {
            channel.Writer.TryWrite(new Tick(i, i * 0.5, i & 7));
            channel.Writer.TryWrite(new Tick(i, i * 0.5, i & 7));
            channel.Reader.TryRead(out Tick a);
            channel.Reader.TryRead(out Tick b);
            sum += a.Id + b.Id;
        }

        return sum;
    }

    // ---------------------------------------------------------------- across processes

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Trades_from_a_child_writer_arrive_equal_big_ones_included(string format)
    {
        SharedSegment segment = NewWarmSegment("xser", capacity: 16 << 20);
        SharedChannel<Trade> channel = NewTrades(segment, format, capacity: 16);
        long baseline = Used(segment);
        const int count = 2000;
        using ChildProcess writer = HostOnBackend("serial-writer", segment.Name, "--channel", "trades", "--format", format, "--count", Str(count), "--big-every", "250", "--big-size", "100000");
        long n = 0;
        await foreach (Trade trade in channel.Reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(Generous).Token))
        {
            Assert.Equal(Trade.Make(n, 250, 100_000), trade);
            n++;
        }

        Assert.Equal(count, n);
        writer.WaitForLine("done", Generous);
        Assert.Equal(0, writer.Finish(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task Trades_to_a_child_reader_arrive_equal(string format)
    {
        SharedSegment segment = NewWarmSegment("xser", capacity: 16 << 20);
        SharedChannel<Trade> channel = NewTrades(segment, format, capacity: 16);
        long baseline = Used(segment);
        const int count = 2000;
        using ChildProcess reader = HostOnBackend("serial-reader", segment.Name, "--channel", "trades", "--format", format, "--big-every", "500", "--big-size", "20000");
        reader.WaitForLine("ready", Generous);
        for (int n = 0; n < count; n++)
        {
            await channel.Writer.WriteAsync(Trade.Make(n, 500, 20_000)).AsTask().WaitAsync(Generous);
        }

        channel.Writer.Complete();
        string line = reader.WaitForLine("read", Generous);
        Assert.Equal(Str(count), Field(line, "n"));
        Assert.Equal("0", Field(line, "bad"));
        Assert.Equal(0, reader.Finish(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task A_writer_killed_mid_stream_loses_nothing_it_wrote_and_its_records_go_back_to_the_heap()
    {
        SharedSegment segment = NewWarmSegment("xkill", capacity: 16 << 20);
        long baseline = Used(segment);
        SharedChannel<Trade> channel = SharedChannel.CreateBounded(segment, "trades", new SharedChannelOptions(8) { SpinCount = 0, YieldCount = 0 }, TradeSerializers.For("memorypack"));
        using ChildProcess writer = HostOnBackend("serial-writer", segment.Name, "--channel", "trades", "--format", "memorypack", "--count", "1000000", "--big-every", "7", "--big-size", "3000");
        writer.WaitForLine("ready", Generous);
        long n = 0;
        for (; n < 200; n++)
        {
            Trade trade = await channel.Reader.ReadAsync().AsTask().WaitAsync(Generous);
            Assert.Equal(Trade.Make(n, 7, 3000), trade);
        }

        writer.Kill(); // SIGKILL, wherever it was: serializing, holding a record, or waiting for room
        WaitUntil(() => writer.HasExited, "the writer is dead");
        segment.ReclaimDeadProcesses();
        while (channel.Reader.TryRead(out Trade? trade))
        {
            Assert.Equal(Trade.Make(n, 7, 3000), trade);
            n++;
        }

        Assert.InRange(n, 200, 200 + 8); // what was queued when it died, at most the capacity
        segment.ReclaimDeadProcesses();
        channel.Dispose(); // the last reference: the channel is destroyed with whatever a crash window left
        Assert.False(SharedChannel.Exists(segment, "trades"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void The_record_buffer_writer_refuses_bad_advances_and_use_after_its_item()
    {
        SharedSegment segment = NewSegment("bw");
        SharedChannel<Trade> channel = NewTrades(segment, "memorypack");
        var probe = new ProbeSerializer();
        using SharedChannel<Trade> writer = SharedChannel.Open(segment, "trades", new FixedIdentity<Trade>(probe, channel.SerializerIdentity!));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Writer.TryWrite(Trade.Make(1)));
        Assert.NotNull(probe.Kept);
        Assert.Throws<InvalidOperationException>(() => probe.Kept!.GetSpan());
        Assert.Equal(0, channel.Reader.Count);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>An unmanaged payload: MemoryPack copies it as it is.</summary>
    public readonly record struct Tick(long Id, double Price, int Quantity);

    /// <summary>An unmanaged struct of the same layout as the record slot of a serialized channel.</summary>
#pragma warning disable CS0649 // never written: only its layout matters
    private struct SlotLookalike
    {
        public ShmHandle Handle;
        public ulong Ticket;
        public int Length;
        public int Reserved;
    }
#pragma warning restore CS0649

    /// <summary>Another serializer's behaviour under a chosen identity.</summary>
    private sealed class FixedIdentity<T>(ISharedSerializer<T> inner, string identity) : ISharedSerializer<T>
    {
        public string Identity => identity;

        public void Serialize(IBufferWriter<byte> destination, in T value) => inner.Serialize(destination, value);

        public T Deserialize(ReadOnlySpan<byte> source) => inner.Deserialize(source);
    }

    /// <summary>Writes bytes that no serializer reads back.</summary>
    private sealed class GarbageSerializer<T> : ISharedSerializer<T>
    {
        public string Identity => "garbage";

        public void Serialize(IBufferWriter<byte> destination, in T value)
        {
            Span<byte> span = destination.GetSpan(40);
            span[..40].Fill(0xEE);
            destination.Advance(40);
        }

        public T Deserialize(ReadOnlySpan<byte> source) => throw new InvalidDataException("garbage");
    }

    /// <summary>Writes nothing.</summary>
    private sealed class EmptySerializer<T> : ISharedSerializer<T>
    {
        public string Identity => "empty";

        public void Serialize(IBufferWriter<byte> destination, in T value)
        {
        }

        public T Deserialize(ReadOnlySpan<byte> source) => default!;
    }

    /// <summary>Throws half-way through writing the poison trade.</summary>
    private sealed class FailingSerializer(ISharedSerializer<Trade> inner) : ISharedSerializer<Trade>
    {
        public static readonly Trade Poison = Trade.Make(-1, bigEvery: 1, bigSize: 3000);

        public string Identity => inner.Identity;

        public void Serialize(IBufferWriter<byte> destination, in Trade value)
        {
            inner.Serialize(destination, value);
            if (value == Poison)
            {
                throw new NotSupportedException("poison");
            }
        }

        public Trade Deserialize(ReadOnlySpan<byte> source) => inner.Deserialize(source);
    }

    /// <summary>Keeps the buffer writer and advances past its span.</summary>
    private sealed class ProbeSerializer : ISharedSerializer<Trade>
    {
        public IBufferWriter<byte>? Kept { get; private set; }

        public string Identity => "probe";

        public void Serialize(IBufferWriter<byte> destination, in Trade value)
        {
            Kept = destination;
            int length = destination.GetSpan(10).Length;
            destination.Advance(length + 1);
        }

        public Trade Deserialize(ReadOnlySpan<byte> source) => throw new NotSupportedException();
    }
}
