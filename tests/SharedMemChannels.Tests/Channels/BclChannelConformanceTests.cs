using System.Threading.Channels;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// The conformance tests against the BCL's own bounded channel: the oracle. If one of these fails,
/// the test is wrong, not the channel.
/// </summary>
public sealed class BclChannelConformanceTests : ChannelConformanceTests
{
    protected override Channel<int> CreateBounded(ChannelSpec spec) =>
        Channel.CreateBounded(
            new BoundedChannelOptions(spec.Capacity)
            {
                FullMode = spec.FullMode,
                SingleReader = spec.SingleReader,
                SingleWriter = spec.SingleWriter,
                AllowSynchronousContinuations = spec.AllowSynchronousContinuations,
            },
            spec.ItemDropped);
}
