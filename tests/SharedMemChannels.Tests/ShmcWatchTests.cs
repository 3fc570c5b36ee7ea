using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// <c>shmc watch</c>, run as a real process. Its samples are timed, so the tests assert what holds
/// whatever the timing: totals written before a sample was taken, and which rates may exist, never
/// how long anything took.
/// </summary>
public class ShmcWatchTests : SegmentTest
{
    private (int ExitCode, string Output) Run(params string[] args)
    {
        ChildProcess shmc = Shmc(args);
        int code = shmc.WaitForExit();
        return (code, shmc.Transcript);
    }

    [Fact]
    public void Watch_json_writes_a_line_per_sample_with_each_channel_and_its_rates_from_the_second_on()
    {
        SharedSegment segment = NewSegment("watch");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "ticks", new SharedChannelOptions(64));
        for (int i = 0; i < 10; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        ChildProcess watch = Shmc("watch", segment.Name, "--count", "2", "--interval", "200ms", "--json");
        string first = watch.ReadLine() ?? throw new InvalidOperationException($"No first sample:\n{watch.Transcript}");
        // Between the samples, or after the second (the test does not know which): only totals are asserted.
        for (int i = 0; i < 5; i++)
        {
            Assert.True(channel.Writer.TryWrite(i));
        }

        Assert.True(channel.Reader.TryRead(out _));
        using SharedChannel<long> late = SharedChannel.CreateBounded<long>(segment, "late", new SharedChannelOptions(8));
        string second = watch.ReadLine() ?? throw new InvalidOperationException($"No second sample:\n{watch.Transcript}");
        Assert.True(watch.WaitForExit() == 0, watch.Transcript);
        Assert.Null(watch.ReadLine()); // two samples, two lines

        using (JsonDocument json = JsonDocument.Parse(first))
        {
            JsonElement root = json.RootElement;
            Assert.Equal(segment.Name, root.GetProperty("segment").GetString());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("seconds").ValueKind);
            Assert.Contains(root.GetProperty("processes").EnumerateArray(), p => p.GetProperty("processId").GetInt32() == Environment.ProcessId && p.GetProperty("liveness").GetString() == "alive");
            Assert.True(root.GetProperty("heap").GetProperty("freeBytes").GetInt64() > 0);
            JsonElement ticks = Channel(root, "ticks");
            Assert.Equal(10, ticks.GetProperty("written").GetInt64());
            Assert.Equal(10, ticks.GetProperty("count").GetInt64());
            Assert.Equal(64, ticks.GetProperty("capacity").GetInt32());
            Assert.Equal(JsonValueKind.Null, ticks.GetProperty("writtenPerSecond").ValueKind);
            Assert.Equal(JsonValueKind.Null, ticks.GetProperty("readPerSecond").ValueKind);
            Assert.Equal("open", ticks.GetProperty("completion").GetString());
            Assert.DoesNotContain(root.GetProperty("channels").EnumerateArray(), c => c.GetProperty("name").GetString() == "late");
        }

        using (JsonDocument json = JsonDocument.Parse(second))
        {
            JsonElement root = json.RootElement;
            Assert.True(root.GetProperty("seconds").GetDouble() > 0);
            JsonElement ticks = Channel(root, "ticks");
            long written = ticks.GetProperty("written").GetInt64();
            Assert.InRange(written, 10, 15);
            Assert.InRange(ticks.GetProperty("read").GetInt64(), 0, 1);
            Assert.True(ticks.GetProperty("writtenPerSecond").GetDouble() >= 0);
            Assert.True(ticks.GetProperty("readPerSecond").GetDouble() >= 0);
            Assert.True(ticks.GetProperty("droppedPerSecond").GetDouble() == 0);

            // A channel that was not in the first sample has no rate yet, whenever it appeared.
            foreach (JsonElement c in root.GetProperty("channels").EnumerateArray().Where(c => c.GetProperty("name").GetString() == "late"))
            {
                Assert.Equal(JsonValueKind.Null, c.GetProperty("writtenPerSecond").ValueKind);
            }
        }
    }

    [Fact]
    public void Watch_json_shows_a_topics_message_rate_its_publisher_and_each_subscribers_lag_and_drops()
    {
        SharedSegment segment = NewSegment("watch");
        using SharedTopic topic = SharedTopic.Create(segment, "quotes", new SharedTopicOptions { BufferCount = 2 });
        using TopicSubscriber slow = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 7; i++)
        {
            publisher.Publish(BitConverter.GetBytes(i)); // never waits: the subscriber misses what the two buffers cannot hold
        }

        byte[] buffer = new byte[topic.MaxMessageSize];
        Assert.True(slow.TryReceive(buffer, out _)); // now at 6, having dropped 5

        ChildProcess watch = Shmc("watch", segment.Name, "--count", "2", "--interval", "200ms", "--json");
        string first = watch.ReadLine() ?? throw new InvalidOperationException($"No first sample:\n{watch.Transcript}");
        for (long i = 7; i < 10; i++)
        {
            publisher.Publish(BitConverter.GetBytes(i));
        }

        string second = watch.ReadLine() ?? throw new InvalidOperationException($"No second sample:\n{watch.Transcript}");
        Assert.True(watch.WaitForExit() == 0, watch.Transcript);

        using (JsonDocument json = JsonDocument.Parse(first))
        {
            JsonElement quotes = Assert.Single(json.RootElement.GetProperty("topics").EnumerateArray());
            Assert.Equal(7, quotes.GetProperty("messageCount").GetInt64());
            Assert.Equal(JsonValueKind.Null, quotes.GetProperty("messagesPerSecond").ValueKind);
            Assert.Equal((true, "alive", Environment.ProcessId), (quotes.GetProperty("hasPublisher").GetBoolean(), quotes.GetProperty("publisherLiveness").GetString(), quotes.GetProperty("publisherProcessId").GetInt32()));
            JsonElement subscriber = Assert.Single(quotes.GetProperty("subscribers").EnumerateArray());
            Assert.Equal((6L, 1L, 5L), (subscriber.GetProperty("position").GetInt64(), subscriber.GetProperty("lag").GetInt64(), subscriber.GetProperty("drops").GetInt64()));
            Assert.Equal(JsonValueKind.Null, subscriber.GetProperty("dropsPerSecond").ValueKind);
        }

        using (JsonDocument json = JsonDocument.Parse(second))
        {
            JsonElement quotes = Assert.Single(json.RootElement.GetProperty("topics").EnumerateArray());
            long messages = quotes.GetProperty("messageCount").GetInt64();
            Assert.InRange(messages, 7, 10);
            Assert.True(quotes.GetProperty("messagesPerSecond").GetDouble() >= 0);
            JsonElement subscriber = Assert.Single(quotes.GetProperty("subscribers").EnumerateArray());
            Assert.Equal(messages - 6, subscriber.GetProperty("lag").GetInt64()); // it read nothing more
            Assert.True(subscriber.GetProperty("dropsPerSecond").GetDouble() >= 0);
        }
    }

    [Fact]
    public void Watch_as_plain_text_writes_a_block_per_sample_with_the_channel_topic_and_rate_columns()
    {
        SharedSegment segment = NewSegment("watch");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "orders", new SharedChannelOptions(16));
        Assert.True(channel.Writer.TryWrite(1));
        using SharedTopic topic = SharedTopic.Create(segment, "quotes", new SharedTopicOptions { BufferCount = 2 });
        using TopicSubscriber subscriber = topic.Subscribe();

        (int code, string output) = Run("watch", segment.Name, "--count", "2", "--interval", "200ms");
        Assert.True(code == 0, output);
        string[] lines = output.Split('\n');
        Assert.Equal(2, lines.Count(l => l.StartsWith("--- ", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l.Contains("WRITTEN/S", StringComparison.Ordinal)));
        string[] rows = [.. lines.Where(l => l.Contains(" orders ", StringComparison.Ordinal))];
        Assert.Equal(2, rows.Length);
        // CHANNEL, WRITTEN/S, ...: no rate in the first block, a number in the second.
        Assert.Equal("-", Cells(rows[0])[1]);
        Assert.Matches(@"^\d+(\.\d+)?$", Cells(rows[1])[1]);
        Assert.Contains("DROPPED/S", output, StringComparison.Ordinal);
        Assert.Contains("MESSAGES/S", output, StringComparison.Ordinal);
        Assert.Contains("DROPS/S", output, StringComparison.Ordinal);
        Assert.DoesNotContain("stderr:", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Watch_fits_80_columns_without_breaking_a_header_or_a_number_and_counters_have_thousands_separators()
    {
        SharedSegment segment = NewSegment("watch");
        using SharedChannel<long> orders = SharedChannel.CreateBounded<long>(segment, "orders", new SharedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropOldest });
        for (int i = 0; i < 1_234_567; i++)
        {
            orders.Writer.TryWrite(i);
        }

        using SharedChannel<long> longName = SharedChannel.CreateBounded<long>(segment, "a-rather-long-channel-name-for-an-80-column-terminal", new SharedChannelOptions(16));
        using SharedTopic topic = SharedTopic.Create(segment, "quotes", new SharedTopicOptions { BufferCount = 2 });
        using TopicSubscriber subscriber = topic.Subscribe();

        string narrow = Watch(80);
        string[] lines = narrow.Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}\n{narrow}"));
        Assert.DoesNotContain("stderr:", narrow, StringComparison.Ordinal);
        string[] headers = ["CHANNEL", "WRITTEN/S", "WRITE/S", "READ/S", "DROPPED/S", "DROP/S", "COUNT", "QUEUED", "WRITTEN", "READ", "DROPPED", "WAITING R/W", "WAIT R/W", "COMPLETION", "STATE"];
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].Contains("│ CHANNEL ", StringComparison.Ordinal))
            {
                continue;
            }

            // The header is one line of whole headers, the rates and the queue among them.
            Assert.StartsWith("├", lines[i + 1].TrimStart(), StringComparison.Ordinal);
            string[] header = Cells(lines[i]);
            Assert.All(header, h => Assert.Contains(h, headers));
            Assert.Contains(header, h => h is "WRITTEN/S" or "WRITE/S");
            Assert.Contains(header, h => h is "READ/S");
            Assert.Contains(header, h => h is "COUNT" or "QUEUED");
        }

        // The orders row holds whole numbers with separators: its queue is 1,000 of 1,000.
        string[] rows = [.. lines.Where(l => l.Contains("│ orders ", StringComparison.Ordinal))];
        Assert.Equal(2, rows.Length);
        Assert.Contains("1,000/1,000", Cells(rows[1]));
        Assert.All(Cells(rows[1]).Skip(1), c => Assert.Matches(@"^(-|\d{1,3}(,\d{3})*(\.\d+)?(/\d{1,3}(,\d{3})*)?|open)$", c));

        // Given room, every column is there, and the totals read 1,234,567 written and 1,233,567 dropped.
        string wide = Watch(200);
        string row = wide.Split('\n').Last(l => l.Contains("│ orders ", StringComparison.Ordinal));
        Assert.Contains("1,234,567", Cells(row));
        Assert.Contains("1,233,567", Cells(row));
        Assert.Contains("WAITING R/W", wide, StringComparison.Ordinal);
        Assert.Contains("COMPLETION", wide, StringComparison.Ordinal);

        string Watch(int columns)
        {
            ChildProcess watch = Shmc(new Dictionary<string, string> { ["COLUMNS"] = columns.ToString(System.Globalization.CultureInfo.InvariantCulture) }, "watch", segment.Name, "--count", "2", "--interval", "200ms");
            Assert.True(watch.WaitForExit() == 0, watch.Transcript);
            return watch.Transcript;
        }
    }

    [Fact]
    public void Watch_of_a_missing_segment_exits_1_with_one_line()
    {
        (int code, string output) = Run("watch", NewName("missing"), "--count", "1");
        Assert.Equal(1, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("stderr: shmc: no segment", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Watch_says_so_and_exits_1_when_the_segment_goes_away()
    {
        SharedSegment segment = NewSegment("watch");
        ChildProcess watch = Shmc("watch", segment.Name, "--interval", "100ms", "--json");
        Assert.NotNull(watch.ReadLine());
        Assert.True(SharedSegment.Remove(segment.Name, SharedMemoryBackend.Posix));

        Assert.Equal(1, watch.WaitForExit());
        string error = Assert.Single(watch.Transcript.Split('\n'), l => l.StartsWith("stderr:", StringComparison.Ordinal));
        Assert.Contains("is gone", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Watch_says_so_and_exits_1_when_the_segment_becomes_damaged()
    {
        SharedSegment segment = NewSegment("watch");
        string path = Platform.Linux.PosixSharedMemoryProvider.PathOf(segment.Name);
        ChildProcess watch = Shmc("watch", segment.Name, "--interval", "100ms", "--json");
        Assert.NotNull(watch.ReadLine());
        const int checksum = 104; // a header byte its checksum covers: changing it damages the header for good
        Flip(path, checksum);
        try
        {
            Assert.Equal(1, watch.WaitForExit());
        }
        finally
        {
            Flip(path, checksum); // whole again, so that the segment detaches as usual
        }

        string error = Assert.Single(watch.Transcript.Split('\n'), l => l.StartsWith("stderr:", StringComparison.Ordinal));
        Assert.Contains("became damaged", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Watch_ends_with_exit_0_on_ctrl_c()
    {
        SharedSegment segment = NewSegment("watch");
        ChildProcess watch = Shmc("watch", segment.Name, "--interval", "100ms", "--json");
        Assert.NotNull(watch.ReadLine());
        using (Process kill = Process.Start("kill", ["-INT", watch.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            kill.WaitForExit();
            Assert.Equal(0, kill.ExitCode);
        }

        Assert.True(watch.WaitForExit() == 0, watch.Transcript);
        Assert.DoesNotContain("stderr:", watch.Transcript, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--interval", "0")]
    [InlineData("--interval", "0ms")]
    [InlineData("--interval", "-1s")]
    [InlineData("--interval", "3601s")]
    [InlineData("--interval", "2h")]
    [InlineData("--interval", "soon")]
    [InlineData("--count", "0")]
    [InlineData("--count", "many")]
    public void Watch_with_a_bad_interval_or_count_exits_2_with_one_line(string option, string value)
    {
        (int code, string output) = Run("watch", NewName("unused"), option, value);
        Assert.Equal(2, code);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("stderr: shmc: ", line, StringComparison.Ordinal);
    }

    private static void Flip(string path, int offset)
    {
        using FileStream file = File.Open(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        file.Position = offset;
        int value = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(value ^ 0x40));
    }

    private static JsonElement Channel(JsonElement sample, string name) =>
        Assert.Single(sample.GetProperty("channels").EnumerateArray(), c => c.GetProperty("name").GetString() == name);

    /// <summary>A table row's cells, trimmed, without the borders.</summary>
    private static string[] Cells(string row) =>
        [.. row.Split('│', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(c => c.Length > 0)];
}
