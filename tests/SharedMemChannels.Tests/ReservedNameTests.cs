using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The library's own directory objects (<c>shmc.channel.*</c>, <c>shmc.topic.*</c>, <c>shmc.sync.*</c>) are out
/// of reach of the named-object calls: Destroy could free a live channel's control block under its users.
/// </summary>
public sealed class ReservedNameTests : SegmentTest
{
    [Theory]
    [InlineData("shmc.channel.c")]
    [InlineData("shmc.topic.t")]
    [InlineData("shmc.sync.s")]
    [InlineData("shmc.mine")]
    public void Reserved_names_are_refused_by_every_named_object_call(string name)
    {
        SharedSegment segment = NewSegment("resv");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(8));
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions());
        using SharedSemaphore semaphore = SharedSemaphore.Create(segment, "s", 1);
        Assert.True(channel.Writer.TryWrite(42));

        Assert.Throws<ArgumentException>(() => segment.Destroy(name));
        Assert.Throws<ArgumentException>(() => segment.Construct<long>(name));
        Assert.Throws<ArgumentException>(() => segment.FindOrConstruct<long>(name));
        Assert.Throws<ArgumentException>(() => segment.FindOrConstruct(name, 5L, out _));
        Assert.Throws<ArgumentException>(() => segment.TryFind<long>(name, out _));

        // Nothing was touched: the channel, the topic and the semaphore work on.
        Assert.True(SharedChannel.Exists(segment, "c"));
        Assert.True(channel.Reader.TryRead(out long item));
        Assert.Equal(42, item);
        Assert.True(SharedTopic.Exists(segment, "t"));
        Assert.True(semaphore.Wait(TimeSpan.Zero));
        semaphore.Release();
    }

    [Fact]
    public void Names_that_only_resemble_the_prefix_are_users_own()
    {
        SharedSegment segment = NewSegment("resv");
        foreach (string name in new[] { "shmc", "shmcx.a", "my.shmc.channel.c", "SHMC.channel.c" })
        {
            segment.Construct<int>(name).Value = 7;
            Assert.True(segment.TryFind(name, out ShmPtr<int> found));
            Assert.Equal(7, found.Value);
            Assert.True(segment.Destroy(name));
        }
    }
}
