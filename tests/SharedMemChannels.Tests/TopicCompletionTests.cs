using System.Buffers;
using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// A publisher's <c>Complete</c>: subscribers in this and other processes read what is buffered, then their
/// <c>ReadAllAsync</c> / <c>WaitToReadAsync</c> end like a completed channel's; inspection shows it.
/// </summary>
public sealed class TopicCompletionTests : SegmentTest
{
    private static byte[] Message(long id, int size = 64)
    {
        byte[] bytes = new byte[size];
        bytes.AsSpan(8).Fill((byte)id);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, id);
        return bytes;
    }

    private static TopicReport Report(SharedSegment segment, string topic) =>
        Assert.Single(SegmentDiagnostics.Inspect(segment.Name, segment.Backend).Topics, t => t.Name == topic);

    [Fact]
    public async Task A_publisher_in_another_process_completes_and_await_foreach_ends_after_the_buffered_messages()
    {
        SharedSegment segment = NewSegment("topic");
        ChildProcess publisher = HostOnBackend("topic-publisher", segment.Name, "--topic", "t", "--create");
        publisher.WaitForLine("ready");
        using SharedTopic topic = SharedTopic.Open(segment, "t");
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicSubscriber waiting = topic.Subscribe();
        ValueTask<bool> pending = waiting.WaitToReadAsync(); // asleep when the completion comes: woken by it
        Assert.Equal("open", Report(segment, "t").Completion);
        for (int i = 0; i < 3; i++)
        {
            publisher.Send("publish 64");
            publisher.WaitForLine("published");
        }

        publisher.Send("complete");
        Assert.Equal("completed ok=True", publisher.WaitForLine("completed"));
        TopicReport report = Report(segment, "t");
        Assert.Equal(("completed", (string?)null), (report.Completion, report.CompletionError));

        var ids = new List<long>();
        await foreach (byte[] message in subscriber.ReadAllAsync().WithCancellation(new CancellationTokenSource(ChildProcess.DefaultWait).Token))
        {
            ids.Add(System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(message));
        }

        Assert.Equal([0L, 1L, 2L], ids);
        Assert.False(await subscriber.WaitToReadAsync());
        await subscriber.Completion.WaitAsync(ChildProcess.DefaultWait);
        Assert.Equal(TaskStatus.RanToCompletion, subscriber.Completion.Status);
        Assert.False(subscriber.TryRead(out _));
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await subscriber.ReadAsync());
        Assert.Throws<ChannelClosedException>(() => subscriber.Receive(new byte[64], TimeSpan.FromSeconds(30), out _));
        Assert.Throws<ChannelClosedException>(() => subscriber.Receive(new ArrayBufferWriter<byte>(), Timeout.InfiniteTimeSpan, out _));
        Assert.Throws<ChannelClosedException>(() => subscriber.Borrow(Timeout.InfiniteTimeSpan, out _));

        // The subscriber that slept through it still gets the three, then the end.
        Assert.True(await pending.AsTask().WaitAsync(ChildProcess.DefaultWait));
        Assert.Equal(3, waiting.Count);
        while (waiting.TryRead(out _))
        {
        }

        Assert.False(await waiting.WaitToReadAsync());

        // A late joiner gets the history, then the end; publishing is over for every process.
        using TopicSubscriber late = topic.Subscribe();
        Assert.Equal(3, late.Count);
        Assert.Equal(3, await late.ReadAllAsync().CountAsync());
        publisher.Send("publish 8");
        Assert.StartsWith("error ChannelClosedException", publisher.WaitForLine("error"), StringComparison.Ordinal);
        publisher.Send("complete");
        Assert.Equal("completed ok=False", publisher.WaitForLine("completed"));
    }

    [Fact]
    public async Task A_publisher_in_another_process_completes_with_an_error_that_subscribers_see_by_type_and_message()
    {
        SharedSegment segment = NewSegment("topic");
        ChildProcess publisher = HostOnBackend("topic-publisher", segment.Name, "--topic", "t", "--create");
        publisher.WaitForLine("ready");
        using SharedTopic topic = SharedTopic.Open(segment, "t");
        using TopicSubscriber subscriber = topic.Subscribe();
        publisher.Send("publish 100");
        publisher.WaitForLine("published");
        publisher.Send("fail InvalidOperationException the sensor is gone");
        Assert.Equal("completed ok=True", publisher.WaitForLine("completed"));

        TopicReport report = Report(segment, "t");
        Assert.Equal("faulted", report.Completion);
        Assert.Equal("System.InvalidOperationException: the sensor is gone", report.CompletionError);

        int read = 0;
        RemoteChannelException remote = await Assert.ThrowsAsync<RemoteChannelException>(async () =>
        {
            await foreach (byte[] message in subscriber.ReadAllAsync())
            {
                Assert.Equal(100, message.Length);
                read++;
            }
        });
        Assert.Equal(1, read); // the buffered message first
        Assert.Equal(("System.InvalidOperationException", "the sensor is gone"), (remote.RemoteTypeName, remote.RemoteMessage));
        await Assert.ThrowsAsync<RemoteChannelException>(async () => await subscriber.WaitToReadAsync());
        Exception fault = await Assert.ThrowsAsync<RemoteChannelException>(() => subscriber.Completion.WaitAsync(ChildProcess.DefaultWait));
        Assert.Equal("System.InvalidOperationException: the sensor is gone", fault.Message);
        ChannelClosedException closed = Assert.Throws<ChannelClosedException>(() => subscriber.Receive(new byte[256], TimeSpan.Zero, out _));
        Assert.IsType<RemoteChannelException>(closed.InnerException);
        Assert.Throws<ChannelClosedException>(() => subscriber.Borrow(TimeSpan.Zero, out _));
    }

    [Theory]
    [InlineData("readall", null, "error=none completion=RanToCompletion")]
    [InlineData("receive", null, "error=ChannelClosedException completion=RanToCompletion")]
    [InlineData("borrow", null, "error=ChannelClosedException completion=RanToCompletion")]
    [InlineData("readall", "boom", "error=RemoteChannelException:System.TimeoutException:boom completion=Faulted")]
    [InlineData("receive", "boom", "error=ChannelClosedException:System.TimeoutException:boom completion=Faulted")]
    [InlineData("borrow", "boom", "error=ChannelClosedException:System.TimeoutException:boom completion=Faulted")]
    public void Subscribers_in_another_process_read_what_is_buffered_then_end_when_the_publisher_here_completes(string mode, string? error, string expected)
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 8, MinSize = 64 });
        using TopicPublisher publisher = topic.CreatePublisher();
        ChildProcess reader = HostOnBackend("topic-reader", segment.Name, "--topic", "t", "--mode", mode);
        reader.WaitForLine("ready");
        for (long i = 0; i < 5; i++)
        {
            publisher.Publish(Message(i, i == 3 ? 4_000 : 64)); // one grows the buffers
        }

        publisher.Complete(error is null ? null : new TimeoutException(error));
        Assert.Equal($"ended n=5 last=4 {expected}", reader.WaitForLine("ended"));
        Assert.Equal(0, reader.Finish());
    }

    [Fact]
    public async Task Completing_here_is_final_keeps_the_error_object_and_abandons_an_open_loan()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, MinSize = 64 });
        using TopicPublisher publisher = topic.CreatePublisher();
        using TopicSubscriber subscriber = topic.Subscribe();
        publisher.Publish(Message(0));
        TopicLoan loan = publisher.Loan(32);
        var error = new InvalidDataException("bad frame");
        publisher.Complete(error);

        Assert.Throws<ChannelClosedException>(() => loan.Send()); // abandoned: never published
        Assert.Throws<ChannelClosedException>(() => publisher.Complete());
        Assert.False(publisher.TryComplete());
        Assert.Same(error, Assert.Throws<ChannelClosedException>(() => publisher.Publish(Message(1))).InnerException);
        Assert.Throws<ChannelClosedException>(() => publisher.Loan(8));

        Assert.True(subscriber.TryRead(out byte[] first));
        Assert.Equal(64, first.Length);
        Assert.Same(error, await Assert.ThrowsAsync<InvalidDataException>(async () => await subscriber.WaitToReadAsync()));
        Assert.Same(error, await Assert.ThrowsAsync<InvalidDataException>(() => subscriber.Completion.WaitAsync(ChildProcess.DefaultWait)));
        Assert.Equal("faulted", Report(segment, "t").Completion);
        Assert.Equal(1, topic.MessageCount);

        // Another process publishing after the completer left is refused as well.
        publisher.Dispose();
        ChildProcess next = HostOnBackend("topic-publisher", segment.Name, "--topic", "t");
        next.WaitForLine("ready");
        next.Send("publish 8");
        Assert.StartsWith("error ChannelClosedException", next.WaitForLine("error"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_canceled_completion_cancels_subscribers_and_removal_after_completion_keeps_the_completion()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, MinSize = 64 });
        using TopicPublisher publisher = topic.CreatePublisher();
        using TopicSubscriber subscriber = topic.Subscribe();
        publisher.Complete(new OperationCanceledException("stopped"));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await subscriber.WaitToReadAsync());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => subscriber.Completion.WaitAsync(ChildProcess.DefaultWait));
        Assert.True(subscriber.Completion.IsCanceled);
        Assert.Equal("canceled", Report(segment, "t").Completion);

        Assert.True(SharedTopic.Remove(segment, "t"));
        using SharedTopic other = SharedTopic.Create(segment, "u", new SharedTopicOptions());
        using TopicSubscriber removedFirst = other.Subscribe();
        Assert.True(SharedTopic.Remove(segment, "u"));
        await Assert.ThrowsAsync<ChannelRemovedException>(async () => await removedFirst.WaitToReadAsync());
        Assert.Throws<ChannelRemovedException>(() => removedFirst.Borrow(TimeSpan.Zero, out _));
        string completion = Report(segment, "u").Completion;
        Assert.Equal("faulted", completion);
        Assert.Equal(typeof(ChannelRemovedException).FullName + ": Topic 'u' was removed.", Report(segment, "u").CompletionError);
    }
}
