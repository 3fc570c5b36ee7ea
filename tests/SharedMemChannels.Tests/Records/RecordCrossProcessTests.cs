using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>
/// Record channels between processes (children are test host roles, Roles/RecordRoles.cs): records checked
/// byte by byte both ways, and a writer or reader SIGKILLed holding records, whose records the segment
/// reclaims.
/// </summary>
public sealed class RecordCrossProcessTests : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static byte Pattern(long n, int index) => (byte)((n * 131) + (index * 7) + (index >> 8));

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    private const string Sizes = "1,64,65536,1048576";
    private static readonly int[] SizeList = [1, 64, 65536, 1048576];

    [Fact]
    public async Task Records_from_a_child_writer_arrive_byte_for_byte()
    {
        SharedSegment segment = NewSegment("xrec", capacity: 8 << 20, max: 64 << 20);
        SharedRecordChannel channel = Track(SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(4)));
        long baseline = Used(segment);
        const int count = 40;
        using ChildProcess writer = HostOnBackend("record-writer", segment.Name, "--channel", "rec", "--sizes", Sizes, "--count", Str(count));
        long n = 0;
        await foreach (ShmRecord record in channel.Reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(Generous).Token))
        {
            using (record)
            {
                ReadOnlySpan<byte> span = record.Span;
                Assert.Equal(SizeList[n % SizeList.Length], span.Length);
                for (int i = 0; i < span.Length; i++)
                {
                    if (span[i] != Pattern(n, i))
                    {
                        Assert.Fail($"record {n} byte {i}: {span[i]}, expected {Pattern(n, i)}");
                    }
                }
            }

            n++;
        }

        Assert.Equal(count, n);
        writer.WaitForLine("done");
        Assert.Equal(0, writer.Finish(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task Records_to_a_child_reader_arrive_byte_for_byte()
    {
        SharedSegment segment = NewSegment("xrec", capacity: 8 << 20, max: 64 << 20);
        SharedRecordChannel channel = Track(SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(4)));
        long baseline = Used(segment);
        const int count = 40;
        using ChildProcess reader = HostOnBackend("record-reader", segment.Name, "--channel", "rec", "--sizes", Sizes);
        reader.WaitForLine("ready");
        for (int n = 0; n < count; n++)
        {
            ShmRecord record = channel.Writer.Allocate(SizeList[n % SizeList.Length]);
            Span<byte> span = record.Span;
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = Pattern(n, i);
            }

            await channel.Writer.WriteAsync(record).AsTask().WaitAsync(Generous);
        }

        channel.Writer.Complete();
        string line = reader.WaitForLine("read", Generous);
        Assert.Equal(Str(count), Field(line, "n"));
        Assert.Equal("0", Field(line, "bad"));
        Assert.Equal(0, reader.Finish(Generous));
        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [InlineData("writer")]
    [InlineData("reader")]
    public void Records_held_by_a_killed_process_are_reclaimed(string role)
    {
        SharedSegment segment = NewSegment("xkill", capacity: 4 << 20, max: 64 << 20);
        SharedRecordChannel channel = Track(SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(16)));
        long baseline = Used(segment);
        const int count = 10;
        if (role == "reader")
        {
            for (int n = 0; n < count; n++)
            {
                ShmRecord record = channel.Writer.Allocate(2000);
                record.Span.Fill((byte)n);
                Assert.True(channel.Writer.TryWrite(record));
            }
        }

        using ChildProcess child = HostOnBackend("record-hold", segment.Name, "--channel", "rec", "--as", role, "--count", Str(count), "--size", "2000");
        Assert.Equal(Str(count), Field(child.WaitForLine("holding", Generous), "n"));
        Assert.Equal(0, channel.Reader.Count);
        Assert.True(Used(segment) >= baseline + (count * 2000), "the child's records are in use");
        child.Kill();
        WaitUntil(() => segment.ReclaimDeadProcesses() >= 0 && Used(segment) == baseline, "the dead child's records reclaimed");

        // The channel goes on with a new writer and reader.
        ShmRecord next = channel.Writer.Allocate(10);
        Assert.True(channel.Writer.TryWrite(next));
        Assert.True(channel.Reader.TryRead(out ShmRecord read));
        read.Dispose();
        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_writer_killed_at_a_random_moment_corrupts_nothing_and_destruction_frees_everything(bool spsc)
    {
        SharedSegment segment = NewSegment("xwkill", capacity: 8 << 20, max: 64 << 20);
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose();
        Assert.False(SharedChannel.Exists(segment, "warm")); // the last reference went with it
        long baseline = Used(segment);
        SharedRecordChannel channel = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(8) { SingleReader = spsc, SingleWriter = spsc });
        using ChildProcess writer = HostOnBackend(
            "record-writer", segment.Name, "--channel", "rec", "--sizes", "1,64,3000,65536,200", "--count", "100000000", "--every", "1", "--no-complete");
        writer.WaitForLine("ready", Generous);

        // Read (checking every byte) on a thread while the writer runs; kill it at a random moment.
        using var stop = new CancellationTokenSource();
        long read = 0;
        Task reading = Task.Run(async () =>
        {
            int[] sizes = [1, 64, 3000, 65536, 200];
            try
            {
                while (true)
                {
                    using ShmRecord record = await channel.Reader.ReadAsync(stop.Token);
                    ReadOnlySpan<byte> span = record.Span;
                    Assert.Equal(sizes[read % sizes.Length], span.Length);
                    for (int i = 0; i < span.Length; i++)
                    {
                        if (span[i] != Pattern(read, i))
                        {
                            Assert.Fail($"record {read} byte {i}: {span[i]}, expected {Pattern(read, i)}");
                        }
                    }

                    read++;
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (ChannelAbandonedException)
            {
            }
        });
        int threshold = Random.Shared.Next(50, 2000);
        while (long.Parse(Field(writer.WaitForLine("committed", Generous), "n"), CultureInfo.InvariantCulture) < threshold)
        {
        }

        writer.Kill();
        await reading.WaitAsync(Generous); // the abandonment ends it once everything committed was read
        Assert.True(read >= threshold, $"read {read} of at least {threshold} committed");
        segment.ReclaimDeadProcesses();
        channel.Dispose(); // the last live reference (the dead child's was dropped): the channel goes with what it holds
        Assert.False(SharedChannel.Exists(segment, "rec"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task A_reader_killed_at_a_random_moment_leaves_nothing_once_reclaimed_and_destroyed()
    {
        SharedSegment segment = NewSegment("xrkill", capacity: 8 << 20, max: 64 << 20);
        SharedChannel.CreateRecords(segment, "warm", new SharedChannelOptions(1)).Dispose();
        Assert.False(SharedChannel.Exists(segment, "warm")); // the last reference went with it
        long baseline = Used(segment);
        SharedRecordChannel channel = SharedChannel.CreateRecords(segment, "rec", new SharedChannelOptions(8) { RetainUndelivered = false });
        using ChildProcess reader = HostOnBackend("record-reader", segment.Name, "--channel", "rec", "--sizes", "100,5000", "--every", "1");
        reader.WaitForLine("ready", Generous);
        int threshold = Random.Shared.Next(20, 500);
        using var feeding = new CancellationTokenSource();
        Task writing = Task.Run(async () =>
        {
            try
            {
                for (int n = 0; ; n++)
                {
                    ShmRecord record = channel.Writer.Allocate(n % 2 == 0 ? 100 : 5000);
                    Span<byte> span = record.Span;
                    for (int i = 0; i < span.Length; i++)
                    {
                        span[i] = Pattern(n, i);
                    }

                    try
                    {
                        await channel.Writer.WriteAsync(record, feeding.Token);
                    }
                    catch
                    {
                        record.Dispose(); // not written: still ours
                        throw;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (ChannelAbandonedException)
            {
            }
        });
        while (long.Parse(Field(reader.WaitForLine("consumed", Generous), "n"), CultureInfo.InvariantCulture) < threshold)
        {
        }

        reader.Kill();
        feeding.Cancel();
        await writing.WaitAsync(Generous);
        Assert.DoesNotContain("bad=", reader.Transcript, StringComparison.Ordinal);
        segment.ReclaimDeadProcesses();
        channel.Dispose(); // the last live reference (the dead child's was dropped): the channel goes with what it holds
        Assert.False(SharedChannel.Exists(segment, "rec"));
        Assert.Equal(baseline, Used(segment));
    }
}
