using System.Threading.Channels;

namespace SharedMemChannels.Tests.Channels;

/// <summary>The conformance tests against <see cref="SharedChannel{T}"/>, reader and writer in this process.</summary>
public class SharedChannelConformanceTests : ChannelConformanceTests
{
    /// <summary>What wakes the channel's sleepers (the notifier matrix: <see cref="NotifierMatrixTests"/>).</summary>
    protected virtual ChannelNotifier Notifier => ChannelNotifier.Futex;

    private SharedSegment? _segment;

    protected override Channel<int> CreateBounded(ChannelSpec spec)
    {
        var options = new SharedChannelOptions(spec.Capacity)
        {
            FullMode = spec.FullMode,
            SingleReader = spec.SingleReader,
            SingleWriter = spec.SingleWriter,
            AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
            Notifier = Notifier,
        };
        _segment ??= NewSegment("chan", capacity: 4 << 20, max: 64 << 20);
        return Track(SharedChannel.CreateBounded(_segment, NewName("c"), options, spec.ItemDropped));
    }
}
