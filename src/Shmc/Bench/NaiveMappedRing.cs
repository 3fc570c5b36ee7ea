using System.Diagnostics;
using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;

namespace Shmc.Bench;

/// <summary>
/// The shared layout of the naive mapped ring: a file in /dev/shm mapped by both processes. One
/// descriptor names every offset; each word written by one side sits on its own 128-byte block.
/// </summary>
internal static class NaiveRingLayout
{
    public const int Line = 128;
    public const long Magic = 0x676E_726E_636D_6873; // "shmcnrng" as little-endian bytes
    public const int Slots = 1024; // a power of two
    public const long SlotMask = Slots - 1;

    // Header (parent-written before the peer starts): magic, mode, total messages, the peer's time bound.
    public const long MagicOffset = 0;
    public const long ModeOffset = 8;
    public const long TotalOffset = 16;
    public const long BoundMillisecondsOffset = 24;

    public const long ReadyOffset = 1 * Line; // written by the peer
    public const long StopOffset = 2 * Line; // written by the parent
    public const long PingTailOffset = 3 * Line; // parent -> peer: written by the parent
    public const long PingHeadOffset = 4 * Line; // written by the peer
    public const long PongTailOffset = 5 * Line; // peer -> parent: written by the peer
    public const long PongHeadOffset = 6 * Line; // written by the parent
    public const long PingSlotsOffset = 8 * Line;
    public const long PongSlotsOffset = PingSlotsOffset + (Slots * BenchMessage.Size);
    public const long Size = PongSlotsOffset + (Slots * BenchMessage.Size);

    public const long ModeLatency = 1;
    public const long ModeStream = 2;
}

/// <summary>
/// One end of an SPSC ring in a <see cref="MemoryMappedViewAccessor"/>: the same algorithm as the C
/// ring (cached opposite index, 64-byte slots, one PAUSE per failed poll), written with the safe
/// accessor API only, as a .NET developer would write it first.
/// </summary>
/// <remarks>
/// Ordering: every accessor Read or Write acquires and releases the view's SafeBuffer (an interlocked
/// reference-count update before and after the access), and an interlocked operation is a full fence.
/// So the slot is written before the tail that publishes it, and the tail is read before the slot it
/// admits, with no explicit barrier. That per-access cost is part of what this reference measures.
/// </remarks>
internal sealed class MappedRingEnd(MemoryMappedViewAccessor view, long tailOffset, long headOffset, long slotsOffset)
{
    private long _position;
    private long _cached;

    public long Position => _position;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TrySend(ref BenchMessage message)
    {
        if (_position - _cached == NaiveRingLayout.Slots)
        {
            _cached = view.ReadInt64(headOffset);
            if (_position - _cached == NaiveRingLayout.Slots)
            {
                return false;
            }
        }

        view.Write(slotsOffset + ((_position & NaiveRingLayout.SlotMask) * BenchMessage.Size), ref message);
        _position++;
        view.Write(tailOffset, _position);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryReceive(out BenchMessage message)
    {
        if (_position == _cached)
        {
            _cached = view.ReadInt64(tailOffset);
            if (_position == _cached)
            {
                message = default;
                return false;
            }
        }

        view.Read(slotsOffset + ((_position & NaiveRingLayout.SlotMask) * BenchMessage.Size), out message);
        _position++;
        view.Write(headOffset, _position);
        return true;
    }
}

/// <summary>
/// The "naive memory-mapped ring in C#" reference: this process and a second shmc process (the hidden
/// <c>bench-peer naive-ring</c> command) share a file in /dev/shm through <see cref="MemoryMappedFile"/>
/// and run the C ring's ping-pong and streaming. The file is named <c>shmc-bench-PID-naive-MODE</c>,
/// removed before it is made and as soon as the peer has mapped it (the mappings outlive the name).
/// </summary>
internal static class NaiveMappedRing
{
    public const string Id = "naive-mmap-ring";

    public static BenchRow Run(BenchEntry entry, bool latency, BenchOptions options)
    {
        const string ShmDirectory = "/dev/shm";
        if (!OperatingSystem.IsLinux() || !Directory.Exists(ShmDirectory))
        {
            return BenchRow.Unavailable(entry, "unavailable (no /dev/shm)");
        }

        string path = Path.Combine(ShmDirectory, string.Create(CultureInfo.InvariantCulture, $"shmc-bench-{Environment.ProcessId}-naive-{(latency ? "latency" : "stream")}"));
        long requested = latency ? options.Messages : options.StreamMessages;
        long total = PingPong.WarmupCount(requested) + requested;
        File.Delete(path);
        try
        {
            using MemoryMappedFile map = CreateMap(path);
            using MemoryMappedViewAccessor view = map.CreateViewAccessor(0, NaiveRingLayout.Size);
            view.Write(NaiveRingLayout.ModeOffset, latency ? NaiveRingLayout.ModeLatency : NaiveRingLayout.ModeStream);
            view.Write(NaiveRingLayout.TotalOffset, total);
            view.Write(NaiveRingLayout.BoundMillisecondsOffset, (long)(((options.Seconds * 2) + 20) * 1000));
            view.Write(NaiveRingLayout.MagicOffset, NaiveRingLayout.Magic);

            using Process peer = BenchCommand.StartSelf("bench-peer", "naive-ring", path);
            Task<string> peerErrors = peer.StandardError.ReadToEndAsync();
            Task<string> peerOutput = peer.StandardOutput.ReadToEndAsync();
            try
            {
                WaitForPeer(view, peer, peerErrors);
                File.Delete(path); // both processes have it mapped: nothing is left behind, even if we are killed
                BenchRow row = latency ? Latency(entry, view, options) : Stream(entry, view, options);
                view.Write(NaiveRingLayout.StopOffset, 1L);
                if (!peer.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    throw new TimeoutException("the peer process did not exit");
                }

                if (peer.ExitCode != 0)
                {
                    throw new InvalidOperationException($"the peer process failed (exit {peer.ExitCode}): {peerErrors.Result.Trim()}");
                }

                return row;
            }
            finally
            {
                view.Write(NaiveRingLayout.StopOffset, 1L);
                if (!peer.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    peer.Kill(entireProcessTree: true);
                    peer.WaitForExit();
                }

                _ = peerOutput.Wait(TimeSpan.FromSeconds(5));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [SupportedOSPlatform("linux")]
    private static MemoryMappedFile CreateMap(string path)
    {
        var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.ReadWrite,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        try
        {
            file.SetLength(NaiveRingLayout.Size);
            return MemoryMappedFile.CreateFromFile(file, null, NaiveRingLayout.Size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static void WaitForPeer(MemoryMappedViewAccessor view, Process peer, Task<string> peerErrors)
    {
        // A cold `dotnet shmc.dll` start on a loaded 2-core machine can take seconds.
        long limit = Stopwatch.GetTimestamp() + PingPong.Ticks(60);
        int polls = 0;
        while (view.ReadInt64(NaiveRingLayout.ReadyOffset) == 0)
        {
            Thread.Sleep(1); // not measured: no need to spin while a runtime starts
            if ((++polls & 15) == 0 && (peer.HasExited || Stopwatch.GetTimestamp() > limit))
            {
                throw new InvalidOperationException(peer.HasExited && peerErrors.Wait(TimeSpan.FromSeconds(5))
                    ? $"the peer process exited early (exit {peer.ExitCode}): {peerErrors.Result.Trim()}"
                    : "the peer process did not start");
            }
        }
    }

    private static BenchRow Latency(BenchEntry entry, MemoryMappedViewAccessor view, BenchOptions options)
    {
        var side = new MappedSide(
            new MappedRingEnd(view, NaiveRingLayout.PingTailOffset, NaiveRingLayout.PingHeadOffset, NaiveRingLayout.PingSlotsOffset),
            new MappedRingEnd(view, NaiveRingLayout.PongTailOffset, NaiveRingLayout.PongHeadOffset, NaiveRingLayout.PongSlotsOffset));
        LatencyResult result = PingPong.Measure(side, options.Messages, options.Seconds);
        return BenchRow.FromLatency(entry, result, options.Messages, PingPong.CountNote(result.Count, options.Messages, "round trips"));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static BenchRow Stream(BenchEntry entry, MemoryMappedViewAccessor view, BenchOptions options)
    {
        long requested = options.StreamMessages;
        var writer = new MappedRingEnd(view, NaiveRingLayout.PingTailOffset, NaiveRingLayout.PingHeadOffset, NaiveRingLayout.PingSlotsOffset);
        long cap = PingPong.Ticks(options.Seconds);
        long warmEnd = Stopwatch.GetTimestamp() + (cap / 5);
        long hard = warmEnd + PingPong.Ticks(2);
        long warmup = PingPong.WarmupCount(requested);
        long sequence = 0;
        for (; sequence < warmup && ((sequence & 255) != 0 || Stopwatch.GetTimestamp() < warmEnd); sequence++)
        {
            Send(writer, sequence, hard);
        }

        Drain(view, writer.Position, hard);
        long start = Stopwatch.GetTimestamp();
        long deadline = start + cap;
        hard = deadline + PingPong.Ticks(2);
        long sent = 0;
        while (sent < requested)
        {
            Send(writer, sequence++, hard);
            sent++;
            if ((sent & 4095) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                break; // the time cap
            }
        }

        Drain(view, writer.Position, hard);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return BenchRow.FromThroughput(entry, sent, seconds, requested, PingPong.CountNote(sent, requested, "messages"));
    }

    private static void Send(MappedRingEnd writer, long sequence, long hard)
    {
        var message = new BenchMessage(sequence, 0);
        int polls = 0;
        while (!writer.TrySend(ref message))
        {
            SpinPause.Once();
            if ((++polls & 1023) == 0 && Stopwatch.GetTimestamp() > hard)
            {
                throw new TimeoutException("the peer stopped reading");
            }
        }
    }

    /// <summary>Waits until the reader has taken everything up to <paramref name="position"/>.</summary>
    private static void Drain(MemoryMappedViewAccessor view, long position, long hard)
    {
        int polls = 0;
        while (view.ReadInt64(NaiveRingLayout.PingHeadOffset) != position)
        {
            SpinPause.Once();
            if ((++polls & 1023) == 0 && Stopwatch.GetTimestamp() > hard)
            {
                throw new TimeoutException("the peer stopped reading");
            }
        }
    }

    /// <summary>
    /// The peer: <c>shmc bench-peer naive-ring PATH</c>. Echoes (latency) or reads and checks (stream) up
    /// to the header's total, until the parent says stop, or until its own time bound. Exit 0 when done
    /// or stopped, 3 when the parent went silent, 4 on a lost, repeated or torn message.
    /// </summary>
    public static int Peer(string path)
    {
        using MemoryMappedFile map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        using MemoryMappedViewAccessor view = map.CreateViewAccessor(0, 0);
        if (view.Capacity < NaiveRingLayout.Size || view.ReadInt64(NaiveRingLayout.MagicOffset) != NaiveRingLayout.Magic)
        {
            throw new InvalidOperationException($"'{path}' is not a naive-ring benchmark file");
        }

        long mode = view.ReadInt64(NaiveRingLayout.ModeOffset);
        long total = view.ReadInt64(NaiveRingLayout.TotalOffset);
        long boundMs = view.ReadInt64(NaiveRingLayout.BoundMillisecondsOffset);
        if (mode is not (NaiveRingLayout.ModeLatency or NaiveRingLayout.ModeStream) || total < 1 || boundMs is < 1 or > 10_000_000)
        {
            throw new InvalidOperationException($"'{path}' has a damaged header");
        }

        var input = new MappedRingEnd(view, NaiveRingLayout.PingTailOffset, NaiveRingLayout.PingHeadOffset, NaiveRingLayout.PingSlotsOffset);
        var output = new MappedRingEnd(view, NaiveRingLayout.PongTailOffset, NaiveRingLayout.PongHeadOffset, NaiveRingLayout.PongSlotsOffset);
        view.Write(NaiveRingLayout.ReadyOffset, 1L);
        return Echo(view, input, output, mode == NaiveRingLayout.ModeLatency, total, Stopwatch.GetTimestamp() + PingPong.Ticks(boundMs / 1000.0));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Echo(MemoryMappedViewAccessor view, MappedRingEnd input, MappedRingEnd output, bool latency, long total, long bound)
    {
        for (long i = 0; i < total; i++)
        {
            BenchMessage message;
            int polls = 0;
            while (!input.TryReceive(out message))
            {
                SpinPause.Once();
                if ((++polls & 1023) == 0 && (view.ReadInt64(NaiveRingLayout.StopOffset) != 0 || Stopwatch.GetTimestamp() > bound))
                {
                    return view.ReadInt64(NaiveRingLayout.StopOffset) != 0 ? 0 : 3;
                }
            }

            if (message.Sequence != i)
            {
                return 4;
            }

            while (latency && !output.TrySend(ref message))
            {
                SpinPause.Once();
                if (Stopwatch.GetTimestamp() > bound)
                {
                    return 3;
                }
            }
        }

        return 0;
    }

    /// <summary>The measuring side of the mapped ping-pong.</summary>
    private sealed class MappedSide(MappedRingEnd ping, MappedRingEnd pong) : IPingPong
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public bool RoundTrip(long sequence, long hardDeadline)
        {
            var message = new BenchMessage(sequence, 0);
            if (!ping.TrySend(ref message))
            {
                throw new InvalidOperationException("the ping ring is full");
            }

            int polls = 0;
            BenchMessage back;
            while (!pong.TryReceive(out back))
            {
                SpinPause.Once();
                if ((++polls & 1023) == 0 && Stopwatch.GetTimestamp() > hardDeadline)
                {
                    return false;
                }
            }

            if (back.Sequence != sequence)
            {
                throw new InvalidOperationException($"expected echo {sequence}, got {back.Sequence}");
            }

            return true;
        }
    }
}
