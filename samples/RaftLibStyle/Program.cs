using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;

namespace SharedMemChannels.Samples;

/// <summary>
/// Seeds 001 and 003 (RaftLib ipc) ported: the README's fullest example, "two processes and two threads
/// (one process communicating with another process that has two threads)". Run with no arguments:
/// <list type="bullet">
/// <item>this process is the <b>producer</b> (RaftLib's parent after <c>fork()</c>): it opens the buffer
/// (<c>ipc::buffer::initialize("thehandle")</c>), starts the consumer process, adds two single-producer,
/// single-consumer record channels (<c>add_spsc_lf_record_channel</c>) and sends records on both
/// (<c>allocate_record</c> + <c>send_record</c>): each record carries its sequence number and a byte
/// pattern, most are small and every thousandth is 1 MiB (RaftLib's record limit);</item>
/// <item>the <b>consumer</b> process reads with two threads, one per channel (<c>receive_record</c>),
/// checks every record byte by byte and in order, frees it (<c>free_record</c>), shows its thread's
/// heap cache (RaftLib's TLS slab: nothing to create), removes its channel (<c>remove_channel</c>) and
/// gives its cache back (<c>close_tls_structure</c>: optional, the thread's end returns it too).</item>
/// </list>
/// The producer then waits for the consumer (<c>waitpid</c>), checks that both channels are gone and the
/// heap's used bytes are back at the baseline, and detaches, which removes the segment
/// (<c>destruct(buffer, "thehandle", true)</c>). Exit code 0 when everything checked out.
/// </summary>
internal static class Program
{
    private static readonly string[] ChannelNames = ["channel-a", "channel-b"];

    private static async Task<int> Main(string[] args)
    {
        try
        {
            return args.FirstOrDefault() switch
            {
                "consumer" => Consumer(args[1]),
                _ => await ProducerAsync(args).ConfigureAwait(false),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"usage: RaftLibStyle [--name SEGMENT] [--count RECORDS-PER-CHANNEL]   ({e.Message})");
            return 2;
        }
    }

    /// <summary>
    /// Both sides open the channels with the same options (any start order): single reader and single
    /// writer make them SPSC rings, as <c>add_spsc_lf_record_channel</c> does.
    /// </summary>
    private static SharedChannelOptions ChannelOptions() => new(256) { SingleReader = true, SingleWriter = true };

    /// <summary>The segment, as <c>ipc::buffer::initialize</c> makes it: open or create, from any process.</summary>
    private static SegmentOptions BufferOptions() =>
        // No size: the segment starts at 1 MiB and grows (without moving) when records need room.
        // RemoveOnLastDetach is destruct(..., unlink = true) done right: the last live process removes it.
        new() { RemoveOnLastDetach = true };

    /// <summary>Record <paramref name="sequence"/>'s length: mostly small and varied, every thousandth 1 MiB.</summary>
    private static int RecordSize(int sequence) => sequence % 1000 == 999 ? 1 << 20 : 4 + (sequence * 37 % 1021 * 4);

    /// <summary>The byte at <paramref name="index"/> (after the 4-byte sequence number) of record <paramref name="sequence"/>.</summary>
    private static byte Pattern(int sequence, int index) => (byte)((sequence * 7) + index);

    private static async Task<int> ProducerAsync(string[] args)
    {
        string segmentName = SampleArgs.SegmentName(args, "raftlib");
        int count = SampleArgs.GetCount(args, "--count", 10_000);
        Console.WriteLine($"RaftLibStyle: segment '{segmentName}', {ChannelNames.Length} record channels x {count} records, consumer process with {ChannelNames.Length} threads");

        using var segment = SharedSegment.OpenOrCreate(segmentName, BufferOptions());

        // RaftLib's named static segment "for synchronization or other purposes where message passing
        // semantics aren't useful": a named object. It tells the consumer how many records to expect.
        segment.Construct(RunInfo.Name, new RunInfo { RecordsPerChannel = count });
        long baseline = segment.GetHeapStatistics().UsedBytes;
        Console.WriteLine($"producer: segment '{segment.Name}' ({segment.Capacity / 1024} KiB now, grows on demand), heap used {baseline} bytes");
        try
        {
            // fork(): the consumer is this program again, in its consumer role.
            using RoleProcess consumer = RoleProcess.Start("consumer", null, "consumer", segmentName);
            var channels = ChannelNames.Select(name => SharedChannel.OpenOrCreateRecords(segment, name, ChannelOptions())).ToArray();
            long bytes = 0;
            var clock = Stopwatch.StartNew();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    foreach (SharedRecordChannel channel in channels)
                    {
                        // allocate_record: a block of the shared heap, from this thread's cache when it can.
                        // TryAllocate is the nullptr-returning form; Allocate throws OutOfSharedMemoryException.
                        int size = RecordSize(i);
                        ShmRecord record = channel.Writer.Allocate(size);
                        Span<byte> span = record.Span;
                        BinaryPrimitives.WriteInt32LittleEndian(span, i);
                        for (int k = 4; k < span.Length; k++)
                        {
                            span[k] = Pattern(i, k);
                        }

                        // send_record without the retry loop: waits (spins, then sleeps) while the ring is full.
                        // The record now belongs to the channel; this process can no longer touch it.
                        await channel.Writer.WriteAsync(record).ConfigureAwait(false);
                        bytes += size;
                    }
                }

                // RaftLib's consumers count to a known number; here completion tells them the stream ended.
                foreach (SharedRecordChannel channel in channels)
                {
                    channel.Writer.Complete();
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"producer: completed push sequence: {count * channels.Length} records, {bytes / (1024.0 * 1024):F1} MiB in {clock.Elapsed.TotalSeconds:F2} s"));

                // waitpid(): the consumer checks its records and removes its channels.
                await consumer.ExpectSuccessAsync().ConfigureAwait(false);
            }
            finally
            {
                // unlink_channels + close_tls_structure: dropping this process's references is all there is.
                // Only after the consumer is done: channels are reference counted, and a consumer that had not
                // opened a channel yet would otherwise find it destroyed (with its queued records) and make a
                // new, empty one. The consumer removed them; the last reference going destroys them now.
                foreach (SharedRecordChannel channel in channels)
                {
                    channel.Dispose();
                }
            }
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or ChannelClosedException or OutOfSharedMemoryException)
        {
            return Fail(e.Message);
        }

        foreach (string name in ChannelNames)
        {
            if (SharedChannel.Exists(segment, name))
            {
                return Fail($"channel '{name}' still exists after both sides removed it");
            }
        }

        Console.WriteLine("producer: both channels removed (reference counted: gone once neither process holds them)");
        HeapStatistics heap = segment.GetHeapStatistics();
        if (heap.UsedBytes != baseline)
        {
            return Fail($"the heap uses {heap.UsedBytes} bytes, {heap.UsedBytes - baseline} more than before the channels: something leaked");
        }

        Console.WriteLine($"producer: heap used bytes back at the baseline ({baseline} bytes): every record freed");

        // destruct(buffer, "thehandle", true): this process is the last one attached, so detaching removes it.
        segment.Dispose();
        if (SharedSegment.Exists(segmentName))
        {
            SharedSegment.Remove(segmentName);
            return Fail($"segment '{segmentName}' still exists after its last process detached");
        }

        Console.WriteLine($"producer: segment '{segmentName}' removed with its last process");
        Console.WriteLine("RaftLibStyle: OK");
        return 0;
    }

    private static int Fail(string why)
    {
        Console.WriteLine($"RaftLibStyle: FAILED: {why}");
        return 1;
    }

    /// <summary>The consumer process: one thread per channel, as RaftLib's <c>std::thread dest1, dest2</c>.</summary>
    private static int Consumer(string segmentName)
    {
        using var segment = SharedSegment.OpenOrCreate(segmentName, BufferOptions());
        if (!segment.TryFind(RunInfo.Name, out ShmPtr<RunInfo> run))
        {
            Console.WriteLine($"error: no '{RunInfo.Name}' object in segment '{segmentName}'");
            return 1;
        }

        int count = run.Value.RecordsPerChannel;
        string?[] failures = new string?[ChannelNames.Length];
        Thread[] threads = [.. ChannelNames.Select((name, index) => new Thread(() => failures[index] = ConsumeChannel(segment, name, count)) { Name = $"consumer {name}" })];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        foreach (string? failure in failures.Where(f => f is not null))
        {
            Console.WriteLine($"error: {failure}");
        }

        // destruct(buffer, "thehandle", false): detaching; the producer, still attached, removes the segment later.
        return failures.All(f => f is null) ? 0 : 1;
    }

    /// <summary>One consumer thread: receive_record until the channel completes, check, free_record, remove_channel.</summary>
    /// <returns>Null when every record arrived intact and in order, else what went wrong.</returns>
    private static string? ConsumeChannel(SharedSegment segment, string channelName, int count)
    {
        try
        {
            using SharedRecordChannel channel = SharedChannel.OpenOrCreateRecords(segment, channelName, ChannelOptions());
            SharedRecordReader reader = channel.Reader;
            int expected = 0;
            long bytes = 0;
            while (true)
            {
                if (reader.TryRead(out ShmRecord record))
                {
                    using (record) // Dispose is free_record: the block goes back to this thread's cache
                    {
                        if (Check(record, expected) is { } damage)
                        {
                            return $"{channelName}: {damage}";
                        }

                        bytes += record.Length;
                    }

                    expected++;
                    continue;
                }

                // receive_record's retry loop, without burning a CPU: wait (spin, then sleep on a futex) until
                // there is a record or the producer completed the channel.
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    break;
                }
            }

            if (expected != count)
            {
                return $"{channelName}: {expected} records arrived, {count} were sent";
            }

            // RaftLib's per-thread TLS slab: this thread's heap cache, made on its first free, nothing to set up.
            ThreadCacheStatistics? cache = segment.GetHeapStatistics().ThreadCaches
                .FirstOrDefault(c => c.ProcessId == Environment.ProcessId && c.ThreadId == Environment.CurrentManagedThreadId);
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"done with consumer channel ({channelName}): {expected} records, {bytes / (1024.0 * 1024):F1} MiB, all intact and in order; this thread's heap cache holds {cache?.Blocks ?? 0} blocks"));

            // remove_channel: removes it for everyone (queued records would be freed with it); it is gone once
            // no process holds it any more.
            SharedChannel.Remove(segment, channelName);

            // close_tls_structure: this thread is done with the segment, its cache goes back to the heap now.
            segment.ReleaseThreadCache();
            return null;
        }
        catch (Exception e) when (e is ChannelClosedException or InvalidOperationException or InvalidSegmentException)
        {
            return $"{channelName}: {e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>Checks record <paramref name="sequence"/> byte by byte; null when intact.</summary>
    private static string? Check(ShmRecord record, int sequence)
    {
        ReadOnlySpan<byte> span = record.Span;
        if (span.Length != RecordSize(sequence))
        {
            return $"record {sequence} is {span.Length} bytes, {RecordSize(sequence)} were sent";
        }

        int got = BinaryPrimitives.ReadInt32LittleEndian(span);
        if (got != sequence)
        {
            return $"record {got} arrived where {sequence} was expected";
        }

        for (int k = 4; k < span.Length; k++)
        {
            if (span[k] != Pattern(sequence, k))
            {
                return $"record {sequence} differs at byte {k}";
            }
        }

        return null;
    }
}

/// <summary>The run's shared parameters: a named object of the segment (RaftLib's named static segment).</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal struct RunInfo
{
    public const string Name = "raftlib.run";

    public int RecordsPerChannel;
}
