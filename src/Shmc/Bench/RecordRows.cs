using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using SharedMemChannels;

namespace Shmc.Bench;

/// <summary>
/// The record rows: records of 64 B, 64 KiB and 1 MiB streamed from this process to a second shmc
/// process (the hidden <c>bench-peer records SEGMENT SIZE MODE BOUND</c>) through a
/// <see cref="SharedRecordChannel"/>, zero-copy (the writer fills the record in place, the reader reads
/// it in place and frees it), beside the same payload copied (the writer copies it into the record from
/// its own buffer, the reader copies it out into its own: what a copying transport costs at least).
/// </summary>
/// <remarks>
/// Both sides touch the sequence number at the start and the last 8 bytes of every record, so a
/// zero-copy record is really handed over, not skipped. Each row makes its own segment
/// (<c>bench-PID-records-N</c>, removed as soon as the peer has it open, and again at the end).
/// </remarks>
internal static class RecordRows
{
    public const string ZeroCopyId = "record-zero-copy";
    public const string CopyId = "record-copy";
    public const string PeerKind = "records";

    /// <summary>Records in flight at most (the channel's capacity).</summary>
    private const int Capacity = 16;

    /// <summary>Records per row at most (the time cap usually ends the big ones first).</summary>
    private const long MaxMessages = 2_000_000;

    private const string ChannelName = "records";
    private const string ReadyLine = "ready";

    private static int s_rows;

    public static BenchRow Run(BenchEntry entry, BenchOptions options, int size, bool copy)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (shared channels need Linux)");
        }

        string name = string.Create(CultureInfo.InvariantCulture, $"bench-{Environment.ProcessId}-records-{Interlocked.Increment(ref s_rows)}");
        SharedSegment.Remove(name);
        try
        {
            long bytes = Math.Max(4L << 20, 4L * Capacity * (size + 4096));
            using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = bytes, MaxCapacity = bytes * 4, RemoveOnLastDetach = true });
            using SharedRecordChannel channel = SharedChannel.CreateRecords(segment, ChannelName, OptionsFor(size));
            string bound = ((options.Seconds * 2) + 20).ToString(CultureInfo.InvariantCulture);
            using Process peer = BenchCommand.StartSelf("bench-peer", PeerKind, name, size.ToString(CultureInfo.InvariantCulture), copy ? "copy" : "zero", bound);
            Task<string> peerErrors = peer.StandardError.ReadToEndAsync();
            try
            {
                PeerProcess.ExpectLine(peer, peerErrors, ReadyLine);
                SharedSegment.Remove(name);
                long requested = Math.Min(options.StreamMessages, MaxMessages);
                byte[] source = new byte[size];
                Random.Shared.NextBytes(source);
                long cap = PingPong.Ticks(options.Seconds);

                long warm = Write(channel.Writer, 0, Math.Min(1_000, requested), size, copy ? source : null, Stopwatch.GetTimestamp() + (cap / 5));
                long start = Stopwatch.GetTimestamp();
                long sent = Write(channel.Writer, warm, requested, size, copy ? source : null, start + cap);
                channel.Writer.TryComplete();
                long received = PeerProcess.ReadDone(peer, peerErrors);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                PeerProcess.CheckDone(peer, peerErrors, received, warm + sent, "records");

                string how = copy
                    ? $"{Format(size)} payload copied into each record from the writer's buffer and out into the reader's"
                    : $"{Format(size)} records filled and read in place (sequence and last 8 bytes touched), freed by the reader";
                return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "records") + "; " + how);
            }
            finally
            {
                channel.Writer.TryComplete();
                if (!peer.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    peer.Kill(entireProcessTree: true);
                    peer.WaitForExit();
                }

                _ = peerErrors.Wait(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or InvalidSegmentException or ArgumentException or OutOfSharedMemoryException)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        finally
        {
            SharedSegment.Remove(name);
        }
    }

    private static SharedChannelOptions OptionsFor(int size) => new(Capacity)
    {
        SingleReader = true,
        SingleWriter = true,
        MaxRecordSize = Math.Max(size, 64),
    };

    private static string Format(int size) => size >= 1 << 20 ? $"{size >> 20} MiB" : size >= 1 << 10 ? $"{size >> 10} KiB" : $"{size} B";

    /// <summary>Writes records <paramref name="first"/>.. until <paramref name="count"/> went in or the deadline; returns how many.</summary>
    private static long Write(SharedRecordWriter writer, long first, long count, int size, byte[]? source, long deadline)
    {
        long sent = 0;
        while (sent < count)
        {
            if ((sent & 255) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break;
            }

            ShmRecord record;
            int tries = 0;
            while (!writer.TryAllocate(size, out record))
            {
                // Out of room: the reader frees records as it goes.
                if (++tries > 1_000_000)
                {
                    throw new TimeoutException("no record could be allocated: the peer stopped freeing");
                }

                Thread.Yield();
            }

            Span<byte> span = record.Span;
            if (source is not null)
            {
                source.CopyTo(span);
            }

            long sequence = first + sent;
            BinaryPrimitives.WriteInt64LittleEndian(span, sequence);
            if (size >= 16)
            {
                BinaryPrimitives.WriteInt64LittleEndian(span[(size - 8)..], ~sequence);
            }

            var spinner = default(SpinWait);
            while (!writer.TryWrite(record))
            {
                if (spinner.NextSpinWillYield && !writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
                {
                    record.Dispose();
                    return sent;
                }

                spinner.SpinOnce();
            }

            sent++;
        }

        return sent;
    }

    /// <summary>
    /// The peer: opens the row's record channel, says "ready", reads (and checks, and copies out in copy
    /// mode) every record until the channel completes, then says "done N". Exit 0 when done, 3 when its own
    /// time bound passed, 4 on a lost, repeated or torn record.
    /// </summary>
    public static int Peer(string segmentName, string sizeText, string modeName, string boundSeconds)
    {
        if (!int.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out int size) || size < 8 ||
            modeName is not ("copy" or "zero") ||
            !double.TryParse(boundSeconds, NumberStyles.Float, CultureInfo.InvariantCulture, out double bound) || bound is <= 0 or > 100_000)
        {
            return Program.Fail("bench-peer records: bad arguments", Program.ExitUsage);
        }

        bool copy = modeName == "copy";
        using SharedSegment segment = SharedSegment.Open(segmentName);
        using SharedRecordChannel channel = SharedChannel.OpenRecords(segment, ChannelName);
        _ = channel.Reader.TryPeek(out _);
        Console.Out.WriteLine(ReadyLine);
        Console.Out.Flush();

        byte[] target = new byte[size];
        long deadline = Stopwatch.GetTimestamp() + PingPong.Ticks(bound);
        long expected = 0;
        SharedRecordReader reader = channel.Reader;
        while (true)
        {
            if (!reader.TryRead(out ShmRecord record))
            {
                if (reader.Completion.IsCompleted)
                {
                    break;
                }

                if (Stopwatch.GetTimestamp() > deadline)
                {
                    return 3;
                }

                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    break;
                }

                continue;
            }

            using (record)
            {
                ReadOnlySpan<byte> span = record.Span;
                if (copy)
                {
                    span.CopyTo(target);
                    span = target;
                }

                long sequence = BinaryPrimitives.ReadInt64LittleEndian(span);
                if (sequence != expected || record.Length != size || (size >= 16 && BinaryPrimitives.ReadInt64LittleEndian(span[(size - 8)..]) != ~sequence))
                {
                    return Program.Fail($"expected record {expected} of {size} bytes, got {sequence} of {record.Length}", 4);
                }
            }

            expected++;
        }

        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeerProcess.DonePrefix}{expected}"));
        Console.Out.Flush();
        return 0;
    }

}
