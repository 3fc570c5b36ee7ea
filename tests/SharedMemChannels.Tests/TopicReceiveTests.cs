using System.Buffers;
using System.Buffers.Binary;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// Receiving from a topic whatever the publisher (in another process) does to the buffers: into a buffer
/// writer, a span with the size reported, and the blocking receive and zero-copy borrow with their timeout
/// and cancellation.
/// </summary>
public sealed class TopicReceiveTests : SegmentTest
{
    /// <summary>The test host's message <paramref name="id"/>: the id, then its low byte repeated.</summary>
    internal static bool IsMessage(ReadOnlySpan<byte> payload, long id) =>
        payload.Length >= 8 && BinaryPrimitives.ReadInt64LittleEndian(payload) == id && !payload[8..].ContainsAnyExcept((byte)id);

    /// <summary>Starts a child publisher that creates topic "t" (4 buffers of 64 bytes) in a new segment; returns it and the topic, opened here.</summary>
    private (ChildProcess Publisher, SharedTopic Topic) StartPublisher(string notifier = "futex")
    {
        SharedSegment segment = NewSegment("topic", capacity: 1 << 20, max: 64 << 20);
        ChildProcess publisher = notifier == "posix"
            ? HostOnBackend("topic-publisher", segment.Name, "--topic", "t", "--create", "--notifier", "posix")
            : HostOnBackend("topic-publisher", segment.Name, "--topic", "t", "--create");
        publisher.WaitForLine("ready");
        return (publisher, Track(SharedTopic.Open(segment, "t")));
    }

    private static long Publish(ChildProcess publisher, int size)
    {
        publisher.Send($"publish {size}");
        return long.Parse(Field(publisher.WaitForLine("published"), "id"), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Messages_that_outgrew_the_subscribers_buffer_are_received_without_an_exception()
    {
        (ChildProcess publisher, SharedTopic topic) = StartPublisher();
        using TopicSubscriber subscriber = topic.Subscribe();
        Assert.Equal(64, topic.MaxMessageSize);
        byte[] small = new byte[64];

        // The span form reports the size a message needs and leaves it where it is.
        long first = Publish(publisher, 32);
        long grown = Publish(publisher, 5_000);
        Assert.True(subscriber.TryReceive(small, out TopicMessageInfo info, out int size));
        Assert.Equal((first, 32), (info.Id, size));
        Assert.True(IsMessage(small.AsSpan(0, 32), first));
        Assert.False(subscriber.TryReceive(small, out info, out size));
        Assert.Equal(5_000, size);
        Assert.Equal(default, info);
        Assert.Equal(1, subscriber.Count); // still there
        Assert.Throws<ArgumentException>(() => subscriber.TryReceive(small, out _)); // the plain form says so as before
        byte[] room = new byte[size];
        Assert.True(subscriber.TryReceive(room, out info, out size));
        Assert.Equal((grown, 5_000), (info.Id, size));
        Assert.True(IsMessage(room, grown));
        Assert.False(subscriber.TryReceive(small, out _, out size));
        Assert.Equal(0, size); // none: nothing needed

        // A buffer writer takes any size.
        var writer = new ArrayBufferWriter<byte>();
        long huge = Publish(publisher, 300_000);
        long after = Publish(publisher, 40);
        Assert.True(subscriber.TryReceive(writer, out info));
        Assert.Equal(huge, info.Id);
        Assert.Equal(300_000, writer.WrittenCount);
        Assert.True(IsMessage(writer.WrittenSpan, huge));
        writer.ResetWrittenCount();
        Assert.True(subscriber.Receive(writer, TimeSpan.FromSeconds(30), out info));
        Assert.Equal(after, info.Id);
        Assert.True(IsMessage(writer.WrittenSpan, after));
        Assert.Equal(info, subscriber.LastMessage);
        writer.ResetWrittenCount();
        Assert.False(subscriber.TryReceive(writer, out _));
        Assert.False(subscriber.Receive(writer, TimeSpan.Zero, out _));
        Assert.Equal(0, writer.WrittenCount);

        // The blocking span form throws for a message it cannot hold, which stays for a writer.
        long big = Publish(publisher, 400_000);
        Assert.Throws<ArgumentException>(() => subscriber.Receive(small, TimeSpan.FromSeconds(30), out _));
        Assert.True(subscriber.Receive(writer, TimeSpan.FromSeconds(30), CancellationToken.None, out info));
        Assert.Equal(big, info.Id);
        Assert.True(IsMessage(writer.WrittenSpan, big));
        Assert.Equal(0, subscriber.Drops);
        Assert.Throws<ArgumentNullException>(() => subscriber.TryReceive((IBufferWriter<byte>)null!, out _));
    }

    [Fact]
    public void A_buffer_writer_that_gives_less_room_than_asked_is_refused_and_the_message_stays()
    {
        (ChildProcess publisher, SharedTopic topic) = StartPublisher();
        using TopicSubscriber subscriber = topic.Subscribe();
        long id = Publish(publisher, 1_000);
        Assert.Throws<InvalidOperationException>(() => subscriber.TryReceive(new StingyWriter(), out _));
        var writer = new ArrayBufferWriter<byte>();
        Assert.True(subscriber.TryReceive(writer, out TopicMessageInfo info));
        Assert.Equal(id, info.Id);
        Assert.True(IsMessage(writer.WrittenSpan, id));
    }

    [Theory]
    [InlineData("futex")]
    [InlineData("posix")]
    public async Task A_blocking_borrow_waits_for_the_next_message_of_another_process_zero_copy(string notifier)
    {
        (ChildProcess publisher, SharedTopic topic) = StartPublisher(notifier);
        using TopicSubscriber subscriber = topic.Subscribe();
        Assert.False(subscriber.Borrow(TimeSpan.Zero, out TopicMessage none));
        Assert.Equal(default, none);
        Assert.False(subscriber.Borrow(TimeSpan.FromMilliseconds(20), CancellationToken.None, out _));

        Task<(bool Got, long Id, bool Intact, bool Bytes)> borrower = Task.Run(() =>
        {
            bool got = subscriber.Borrow(Timeout.InfiniteTimeSpan, CancellationToken.None, out TopicMessage message);
            using (message)
            {
                return (got, message.Info.Id, message.IsIntact, IsMessage(message.Payload, message.Info.Id));
            }
        });
        WaitUntil(() => topic.Core.MessageEvent.Waiters > 0, "the borrower sleeps");
        long id = Publish(publisher, 3_000); // and the buffers grow under it
        (bool got, long borrowedId, bool intact, bool bytes) = await borrower.WaitAsync(ChildProcess.DefaultWait);
        Assert.True(got);
        Assert.Equal(id, borrowedId);
        Assert.True(intact);
        Assert.True(bytes);
        Assert.Equal(id, subscriber.LastMessage.Id);

        // Held: the next borrow is refused until it is disposed (the using above did).
        long next = Publish(publisher, 10);
        Assert.True(subscriber.Borrow(TimeSpan.FromSeconds(30), out TopicMessage held));
        Assert.Equal(next, held.Info.Id);
        Assert.Throws<InvalidOperationException>(() => subscriber.Borrow(TimeSpan.Zero, out _));
        held.Dispose();
        Assert.Throws<ArgumentOutOfRangeException>(() => subscriber.Borrow(TimeSpan.FromMilliseconds(-2), out _));
    }

    [Theory]
    [InlineData("futex", "borrow")]
    [InlineData("futex", "receive")]
    [InlineData("posix", "borrow")]
    [InlineData("posix", "receive")]
    public async Task A_blocked_receive_or_borrow_ends_when_its_token_is_canceled(string notifier, string how)
    {
        (_, SharedTopic topic) = StartPublisher(notifier);
        using TopicSubscriber subscriber = topic.Subscribe();
        using var cancellation = new CancellationTokenSource();
        Task blocked = Task.Run(() =>
        {
            if (how == "borrow")
            {
                subscriber.Borrow(Timeout.InfiniteTimeSpan, cancellation.Token, out _);
            }
            else
            {
                subscriber.Receive(new byte[64], Timeout.InfiniteTimeSpan, cancellation.Token, out _);
            }
        });
        WaitUntil(() => topic.Core.MessageEvent.Waiters > 0, "the receiver sleeps");
        await cancellation.CancelAsync();
        OperationCanceledException canceled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked.WaitAsync(ChildProcess.DefaultWait));
        Assert.Equal(cancellation.Token, canceled.CancellationToken);
        WaitUntil(() => topic.Core.MessageEvent.Waiters == 0, "the announcement is withdrawn");

        // A token canceled before the call ends it at once, message or not.
        Assert.Throws<OperationCanceledException>(() => subscriber.Borrow(TimeSpan.FromSeconds(30), cancellation.Token, out _));
        Assert.Throws<OperationCanceledException>(() => subscriber.Receive(new byte[64], TimeSpan.FromSeconds(30), cancellation.Token, out _));
    }

    /// <summary>A buffer writer that breaks its contract: less room than asked.</summary>
    private sealed class StingyWriter : IBufferWriter<byte>
    {
        public void Advance(int count) => throw new NotSupportedException("nothing to advance");

        public Memory<byte> GetMemory(int sizeHint = 0) => new byte[16];

        public Span<byte> GetSpan(int sizeHint = 0) => new byte[16];
    }
}
