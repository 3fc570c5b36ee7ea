using System.Threading.Channels;
using BenchmarkDotNet.Attributes;

namespace SharedMemChannels.Benchmarks;

/// <summary>
/// One write and one read of a 64-byte message through the BCL bounded channel, on one thread: the
/// single-process baseline that SharedChannel&lt;T&gt;'s write+read is compared with (same capacity, same
/// options, same message). Synchronous TryWrite+TryRead, and WriteAsync+ReadAsync that complete at once;
/// then the same two through a <see cref="SharedChannel{T}"/> (its own segment, single reader and writer,
/// so the SPSC ring) in this one process: what the shared-memory ring, its event counts and its
/// completion checks cost over the BCL's, before any process boundary.
/// </summary>
[MemoryDiagnoser]
public class ChannelBenchmarks
{
    private Channel<Message64> _channel = null!;
    private SharedChannel<Message64> _shared = null!;

    [GlobalSetup]
    public void Setup()
    {
        _channel = Channel.CreateBounded<Message64>(new BoundedChannelOptions(1024)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });

        // The same shape in shared memory: the one-line form, a segment of its own removed with the channel.
        string name = $"bench-channel-{Environment.ProcessId}";
        SharedSegment.Remove(SharedChannel.SegmentPrefix + name);
        _shared = SharedChannel.OpenOrCreateBounded<Message64>(name, new SharedChannelOptions(1024)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
    }

    [GlobalCleanup]
    public void Cleanup() => _shared.Dispose();

    [Benchmark(Baseline = true, Description = "BCL bounded Channel TryWrite+TryRead")]
    public long TryWriteTryRead()
    {
        _channel.Writer.TryWrite(new Message64(1));
        _channel.Reader.TryRead(out Message64 message);
        return message.Sequence;
    }

    [Benchmark(Description = "BCL bounded Channel WriteAsync+ReadAsync")]
    public async ValueTask<long> WriteAsyncReadAsync()
    {
        await _channel.Writer.WriteAsync(new Message64(1)).ConfigureAwait(false);
        Message64 message = await _channel.Reader.ReadAsync().ConfigureAwait(false);
        return message.Sequence;
    }

    [Benchmark(Description = "SharedChannel TryWrite+TryRead")]
    public long SharedTryWriteTryRead()
    {
        _shared.Writer.TryWrite(new Message64(1));
        _shared.Reader.TryRead(out Message64 message);
        return message.Sequence;
    }

    [Benchmark(Description = "SharedChannel WriteAsync+ReadAsync")]
    public async ValueTask<long> SharedWriteAsyncReadAsync()
    {
        await _shared.Writer.WriteAsync(new Message64(1)).ConfigureAwait(false);
        Message64 message = await _shared.Reader.ReadAsync().ConfigureAwait(false);
        return message.Sequence;
    }
}

/// <summary>A 64-byte message, as in <c>shmc bench</c>.</summary>
public readonly record struct Message64(long Sequence)
{
    public long Stamp { get; init; }

    public long Payload2 { get; init; }

    public long Payload3 { get; init; }

    public long Payload4 { get; init; }

    public long Payload5 { get; init; }

    public long Payload6 { get; init; }

    public long Payload7 { get; init; }
}
