using System.Threading.Channels;
using SharedMemChannels.MemoryPack;
using SharedMemChannels.Tests.Channels;

namespace SharedMemChannels.Tests.Serialization;

/// <summary>
/// The conformance tests against a serialized <see cref="SharedChannel{T}"/> (items carried as MemoryPack
/// records), reader and writer in this process: every contract item holds but peeking (a serialized
/// reader cannot peek, <see cref="ChannelConformanceTests.CanPeek"/>).
/// </summary>
public sealed class SerializedChannelConformanceTests : ChannelConformanceTests
{
    private SharedSegment? _segment;

    protected override bool CanPeek => false;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        var options = new SharedChannelOptions(spec.Capacity)
        {
            FullMode = spec.FullMode,
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        };
        _segment ??= NewSegment("serconf", capacity: 8 << 20, max: 64 << 20);
        return Track(SharedChannel.CreateBounded(_segment, NewName("c"), options, new MemoryPackSharedSerializer<int>(), spec.ItemDropped));
    }
}

/// <summary>The conformance tests against an unbounded serialized <see cref="SharedChannel{T}"/> (System.Text.Json records, reflection-based).</summary>
public sealed class SerializedUnboundedChannelConformanceTests : ChannelConformanceTests
{
    private SharedSegment? _segment;

    protected override bool CanPeek => false;

    protected override bool Unbounded => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        _ = new SharedChannelOptions(spec.Capacity) { FullMode = spec.FullMode }; // items 1 and 2 check them, as the oracle does
        var options = new SharedChannelOptions
        {
            ChunkCapacity = spec.Capacity, // an unbounded channel takes no capacity or full mode
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        };
        _segment ??= NewSegment("serunb", capacity: 8 << 20, max: 64 << 20);
        return Track(SharedChannel.CreateUnbounded(_segment, NewName("c"), options, new SystemTextJsonSharedSerializer<int>(new System.Text.Json.JsonSerializerOptions())));
    }
}
