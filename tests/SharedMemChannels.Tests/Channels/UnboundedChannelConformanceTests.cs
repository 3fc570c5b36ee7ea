using System.Threading.Channels;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// The conformance tests against the BCL's own unbounded channel: the oracle for the unbounded items.
/// The spec's capacity and full mode are checked as the bounded options check them (items 1 and 2),
/// then ignored, as an unbounded channel has neither.
/// </summary>
public sealed class BclUnboundedChannelConformanceTests : ChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        _ = new BoundedChannelOptions(spec.Capacity) { FullMode = spec.FullMode };
        return Channel.CreateUnbounded<int>(new UnboundedChannelOptions
        {
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        });
    }
}

/// <summary>
/// The conformance tests against an unbounded <see cref="SharedChannel{T}"/>, reader and writer in this
/// process. The spec's capacity becomes the chunk capacity, so the small capacities of the tests make
/// the queue cross chunks (link and free them) every few items.
/// </summary>
public sealed class SharedUnboundedChannelConformanceTests : ChannelConformanceTests
{
    private SharedSegment? _segment;

    protected override bool Unbounded => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        _ = new SharedChannelOptions(spec.Capacity) { FullMode = spec.FullMode }; // items 1 and 2 check them, as the oracle does
        var options = new SharedChannelOptions
        {
            ChunkCapacity = spec.Capacity, // an unbounded channel takes no capacity or full mode: the spec's are ignored here, as the BCL oracle ignores them
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        };
        _segment ??= NewSegment("unb", capacity: 4 << 20, max: 64 << 20);
        return Track(SharedChannel.CreateUnbounded<int>(_segment, NewName("u"), options));
    }
}

/// <summary>
/// The conformance tests against the BCL's own prioritized channel (.NET 9): the oracle for the prioritized
/// items and for the order. Capacity and full mode are checked as the bounded options check them, then ignored.
/// </summary>
public sealed class BclPrioritizedChannelConformanceTests : ChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override bool Prioritized => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        _ = new BoundedChannelOptions(spec.Capacity) { FullMode = spec.FullMode };
        return Channel.CreateUnboundedPrioritized(new UnboundedPrioritizedChannelOptions<int>
        {
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        });
    }
}

/// <summary>
/// The conformance tests against a prioritized <see cref="SharedChannel{T}"/>, reader and writer in this
/// process. The spec's capacity becomes the heap's first size, so the small capacities of the tests make
/// the array double and halve every few items.
/// </summary>
public sealed class SharedPrioritizedChannelConformanceTests : ChannelConformanceTests
{
    private SharedSegment? _segment;

    protected override bool Unbounded => true;

    protected override bool Prioritized => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        _ = new SharedChannelOptions(spec.Capacity) { FullMode = spec.FullMode }; // items 1 and 2 check them, as the oracle does
        var options = new SharedChannelOptions
        {
            ChunkCapacity = spec.Capacity,
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
        };
        _segment ??= NewSegment("prio", capacity: 4 << 20, max: 64 << 20);
        return Track(SharedChannel.CreateUnboundedPrioritized<int>(_segment, NewName("p"), options));
    }
}
