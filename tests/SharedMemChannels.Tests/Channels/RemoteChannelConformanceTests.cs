using System.Threading.Channels;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// The conformance tests against <see cref="SharedChannel{T}"/> with the other side in a child process:
/// the channels are made here, and one test host child per test opens them and runs the forwarded side
/// (<see cref="ChannelHost"/>).
/// </summary>
public abstract class RemoteChannelConformanceTests : ChannelConformanceTests
{
    private SharedSegment? _segment;
    private ChannelHost? _host;

    protected override bool ErrorObjectsCrossAsIs => false;

    protected override bool BothSidesLocal => false;

    /// <summary>Every forwarded call is a round trip through the child's pipes: a tenth of the local stress.</summary>
    protected override int StressItems => 500;

    /// <summary>What wakes the channel's sleepers (the notifier matrix runs some flavours with semaphores).</summary>
    protected virtual ChannelNotifier Notifier => ChannelNotifier.Futex;

    /// <summary>Makes the channel's local side and opens it in the child; returns the pair as one channel.</summary>
    protected Channel<int> CreateBounded(ChannelSpec spec, bool localWriter)
    {
        var options = new SharedChannelOptions
        {
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
            Notifier = Notifier,
        };
        if (Unbounded)
        {
            _ = new SharedChannelOptions(spec.Capacity) { FullMode = spec.FullMode }; // items 1 and 2 check them, as the oracle does
            options.ChunkCapacity = spec.Capacity; // small chunks: the queue crosses chunks every few items
        }
        else
        {
            options.Capacity = spec.Capacity;
            options.FullMode = spec.FullMode;
        }

        _segment ??= NewSegment("xchan", capacity: 4 << 20, max: 64 << 20);
        string name = NewName("c");
        SharedChannel<int> local = Track(Prioritized
            ? SharedChannel.CreateUnboundedPrioritized<int>(_segment, name, options)
            : Unbounded
            ? SharedChannel.CreateUnbounded<int>(_segment, name, options)
            : SharedChannel.CreateBounded(_segment, name, options, localWriter ? spec.ItemDropped : null));
        _host ??= new ChannelHost(HostOnBackend("channel-serve", _segment.Name));
        // The child checks the options it finds stored: an unbounded channel reports no bound and Wait.
        ChannelSpec stored = Unbounded ? spec with { Capacity = int.MaxValue, FullMode = BoundedChannelFullMode.Wait } : spec;
        int cid = _host.Open(name, localWriter ? stored with { ItemDropped = null } : stored);
        return localWriter ? new RemoteReaderChannel(local, _host, cid) : new RemoteWriterChannel(local, _host, cid);
    }
}

/// <summary>Reader here, writer in a child process (items it drops are reported back and passed to the callback here).</summary>
public sealed class RemoteWriterChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: false);
}

/// <summary>Writer here, reader in a child process.</summary>
public sealed class RemoteReaderChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override bool DropsHere => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: true);
}

/// <summary>Unbounded: reader here, writer in a child process.</summary>
public sealed class RemoteWriterUnboundedChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: false);
}

/// <summary>Unbounded: writer here, reader in a child process.</summary>
public sealed class RemoteReaderUnboundedChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override bool DropsHere => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: true);
}

/// <summary>Prioritized: reader here, writer in a child process (which opens the channel with <see cref="SharedChannel.Open{T}(SharedSegment, string)"/>, the default comparer).</summary>
public sealed class RemoteWriterPrioritizedChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override bool Prioritized => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: false);
}

/// <summary>Prioritized: writer here, reader in a child process.</summary>
public sealed class RemoteReaderPrioritizedChannelConformanceTests : RemoteChannelConformanceTests
{
    protected override bool Unbounded => true;

    protected override bool Prioritized => true;

    protected override bool DropsHere => true;

    protected override Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: true);
}
