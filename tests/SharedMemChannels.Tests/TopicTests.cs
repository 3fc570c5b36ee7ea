using System.Buffers.Binary;
using System.Threading.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>Publish/subscribe topics: headers, history, multi-buffering and drops, acknowledgement, leases, damage, and fan-out to child processes.</summary>
public sealed class TopicTests : SegmentTest
{
    private static byte[] Message(long id, int size = 64)
    {
        byte[] payload = new byte[size];
        BinaryPrimitives.WriteInt64LittleEndian(payload, id);
        return payload;
    }

    [Fact]
    public void Every_subscriber_gets_every_message_with_its_header()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 8, MinSize = 128, HashPayloads = true });
        using TopicSubscriber a = topic.Subscribe();
        using TopicSubscriber b = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        DateTime before = DateTime.UtcNow;
        for (long i = 0; i < 5; i++)
        {
            Assert.Equal(i, publisher.Publish(Message(i, 10 + (int)i)));
        }

        byte[] buffer = new byte[topic.MaxMessageSize];
        foreach (TopicSubscriber s in new[] { a, b })
        {
            for (long i = 0; i < 5; i++)
            {
                Assert.True(s.TryReceive(buffer, out TopicMessageInfo info));
                Assert.Equal(i, info.Id);
                Assert.Equal(i + 1, info.Clock);
                Assert.Equal(10 + (int)i, info.Size);
                Assert.NotEqual(0UL, info.Hash);
                Assert.Equal(0, info.Dropped);
                Assert.Equal(DateTimeKind.Utc, info.TimeUtc.Kind);
                Assert.True(info.TimeUtc >= before.AddSeconds(-1));
                Assert.Equal(i, BinaryPrimitives.ReadInt64LittleEndian(buffer));
            }

            Assert.False(s.TryReceive(buffer, out _));
            Assert.Equal(0, s.Drops);
        }
    }

    [Fact]
    public void A_late_joiner_gets_the_last_messages_of_the_history()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, HistoryDepth = 3 });
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 6; i++)
        {
            publisher.Publish(Message(i));
        }

        using TopicSubscriber late = topic.Subscribe();
        Assert.Equal(3, late.Count);
        var ids = new List<long>();
        while (late.TryRead(out byte[] message))
        {
            ids.Add(BinaryPrimitives.ReadInt64LittleEndian(message));
        }

        Assert.Equal([3L, 4L, 5L], ids);
    }

    [Fact]
    public void A_slow_subscriber_never_holds_the_publisher_and_sees_the_gap()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2 });
        using TopicSubscriber slow = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 7; i++)
        {
            publisher.Publish(Message(i)); // never waits: no acknowledgement timeout
        }

        byte[] buffer = new byte[topic.MaxMessageSize];
        Assert.True(slow.TryReceive(buffer, out TopicMessageInfo first));
        Assert.Equal(5, first.Id);
        Assert.Equal(5, first.Dropped);
        Assert.True(slow.TryReceive(buffer, out TopicMessageInfo second));
        Assert.Equal((6L, 0L), (second.Id, second.Dropped));
        Assert.Equal(5, slow.Drops);

        // Inspection shows the topic, its live publisher and the subscriber's position and drops.
        using TopicSubscriber idle = topic.Subscribe();
        TopicReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name, Backend).Topics);
        Assert.Equal(("t", "ready", 7L, true, ProcessLiveness.Alive, Environment.ProcessId), (report.Name, report.State, report.MessageCount, report.HasPublisher, report.PublisherLiveness, report.PublisherProcessId));
        Assert.Equal(2, report.Subscribers.Count);
        Assert.Contains(report.Subscribers, s => s.Position == 7 && s.Drops == 5);
        using ChildProcess shmc = ChildProcess.Shmc("inspect", segment.Name, "--backend", BackendArgument);
        Assert.Equal(0, shmc.Finish());
        Assert.Contains("Topic t (ready): 7 messages", shmc.Transcript, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reader_racing_a_fast_publisher_sees_whole_messages_in_order_or_drops_never_a_torn_one()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2, MinSize = 256 });
        using TopicSubscriber subscriber = topic.Subscribe();
        using var stop = new CancellationTokenSource();
        Task publishing = Task.Run(() =>
        {
            using TopicPublisher publisher = topic.CreatePublisher();
            byte[] payload = new byte[256];
            for (long i = 0; i < 200_000; i++)
            {
                payload.AsSpan().Fill((byte)i);
                BinaryPrimitives.WriteInt64LittleEndian(payload, i);
                publisher.Publish(payload.AsSpan(0, 8 + (int)(i % 248)));
            }
        });

        byte[] buffer = new byte[256];
        long last = -1;
        long received = 0;
        while (!publishing.IsCompleted || subscriber.Count > 0)
        {
            if (!subscriber.TryReceive(buffer, out TopicMessageInfo info))
            {
                continue;
            }

            long id = BinaryPrimitives.ReadInt64LittleEndian(buffer);
            Assert.Equal(info.Id, id);
            Assert.True(id > last);
            Assert.Equal(8 + (int)(id % 248), info.Size);
            Assert.True(buffer.AsSpan(8, info.Size - 8).IndexOfAnyExcept((byte)id) < 0, $"message {id} is torn");
            Assert.Equal(id - last - 1, info.Dropped);
            last = id;
            received++;
        }

        await publishing;
        Assert.True(received > 0);
        Assert.Equal(199_999 + 1 - received, subscriber.Drops);
    }

    [Fact]
    public void A_borrowed_message_is_read_in_place_and_holds_its_buffer_until_released()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 1, AckTimeout = TimeSpan.FromMilliseconds(30), HashPayloads = true });
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        publisher.Publish(Message(0, 100));

        Assert.True(subscriber.TryBorrow(out TopicMessage message));
        Assert.Equal((0L, 100), (message.Info.Id, message.Info.Size));
        Assert.Equal(0, BinaryPrimitives.ReadInt64LittleEndian(message.Payload));
        Assert.True(message.IsIntact);
        Assert.Throws<InvalidOperationException>(() => subscriber.TryBorrow(out _));
        Assert.False(subscriber.TryRead(out _)); // nothing more yet

        // The only buffer is held: the publisher waits out its acknowledgement timeout, then overwrites it.
        publisher.Publish(Message(1, 100));
        Assert.False(message.IsIntact);
        message.Dispose();
        message.Dispose(); // harmless
        try
        {
            _ = message.Payload.Length;
            Assert.Fail("the released message's payload was readable");
        }
        catch (ObjectDisposedException)
        {
        }

        Assert.True(subscriber.TryBorrow(out TopicMessage next));
        using (next)
        {
            Assert.Equal(1, BinaryPrimitives.ReadInt64LittleEndian(next.Payload));
            Assert.True(next.IsIntact);
        }

        Assert.False(default(TopicMessage).IsIntact);
    }

    public sealed record Quote(string Symbol, double Price, long Sequence);

    [Fact]
    public void Any_type_travels_through_a_topic_with_a_serializer()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 8, MinSize = 256 });
        var serializer = new SystemTextJsonSharedSerializer<Quote>();
        using SerializedTopicSubscriber<Quote> subscriber = topic.Subscribe(serializer);
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 3; i++)
        {
            publisher.Publish(new Quote("ABC", 10.5 + i, i), serializer);
        }

        for (long i = 0; i < 3; i++)
        {
            Assert.True(subscriber.TryRead(out Quote? quote));
            Assert.Equal(new Quote("ABC", 10.5 + i, i), quote);
        }

        publisher.Publish("not json"u8);
        Assert.Throws<InvalidDataException>(() => subscriber.TryRead(out _));
        publisher.Publish(new Quote(new string('x', 300), 1, 1), serializer); // larger than the buffers: they grow
        Assert.True(subscriber.TryRead(out Quote? grown));
        Assert.Equal(300, grown!.Symbol.Length);
    }

    [Fact]
    public void A_message_larger_than_the_buffers_grows_them_and_every_subscriber_follows()
    {
        SharedSegment segment = NewSegment("topic", capacity: 1 << 20, max: 64 << 20);
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, MinSize = 64, Reserve = 16, HashPayloads = true });
        Assert.Equal(80, topic.MaxMessageSize);
        using TopicSubscriber early = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        publisher.Publish(Message(0, 80));
        publisher.Publish(Message(1, 1000)); // grows the buffers: message 0, buffered, is copied along
        publisher.Publish(Message(2, 100_000)); // and again
        Assert.True(topic.MaxMessageSize >= 100_000);
        var sizes = new List<int>();
        while (early.TryRead(out byte[] message))
        {
            Assert.Equal(sizes.Count, BinaryPrimitives.ReadInt64LittleEndian(message));
            sizes.Add(message.Length);
        }

        Assert.Equal([80, 1000, 100_000], sizes);
        Assert.Equal(0, early.Drops);

        using ChildProcess child = HostOnBackend("topic-sub", segment.Name, "--topic", "t", "--count", "1");
        child.WaitForLine("ready");
        publisher.Publish(Message(3, 200_000));
        Assert.Equal("got n=1 drops=0 last=3", child.WaitForLine("got"));
        Assert.Throws<OutOfSharedMemoryException>(() => publisher.Publish(new byte[100 << 20]));
    }

    [Fact]
    public void A_loaned_buffer_is_written_in_place_and_sent_with_the_zero_copy_flag()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, MinSize = 64 });
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        TopicLoan loan = publisher.Loan(1000); // larger than the buffers: they grow first
        Assert.Throws<InvalidOperationException>(() => publisher.Loan(10));
        Assert.Throws<InvalidOperationException>(() => publisher.Publish(Message(9)));
        Assert.False(subscriber.TryRead(out _)); // not sent yet
        loan.Span.Fill(7);
        BinaryPrimitives.WriteInt64LittleEndian(loan.Span, 0);
        Assert.Equal(0, loan.Send(500));
        Assert.Throws<InvalidOperationException>(() => loan.Send(500));
        Assert.Throws<ArgumentOutOfRangeException>(() => publisher.Loan(10).Send(11));

        byte[] buffer = new byte[topic.MaxMessageSize];
        Assert.True(subscriber.TryReceive(buffer, out TopicMessageInfo info));
        Assert.Equal((0L, 500, true), (info.Id, info.Size, info.ZeroCopy));
        Assert.True(buffer.AsSpan(8, 492).IndexOfAnyExcept((byte)7) < 0);
        Assert.Throws<InvalidOperationException>(() => default(TopicLoan).Send());
    }

    [Fact]
    public void With_an_ack_timeout_a_subscriber_that_does_not_read_delays_the_publisher_at_most_that_long()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2, AckTimeout = TimeSpan.FromMilliseconds(20) });
        using TopicSubscriber stuck = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 4; i++)
        {
            Assert.Equal(i, publisher.Publish(Message(i))); // each waits for the stuck one, then goes on
        }

        Assert.True(stuck.TryRead(out _));
        Assert.Equal(2, stuck.Drops);
    }

    [Fact]
    public async Task A_subscriber_is_a_ChannelReader()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 16, MinSize = 8, AckTimeout = TimeSpan.FromSeconds(30) });
        using TopicSubscriber<long> subscriber = topic.Subscribe<long>();
        ChannelReader<long> reader = subscriber;
        Task publishing = Task.Run(() =>
        {
            using TopicPublisher publisher = topic.CreatePublisher();
            for (long i = 0; i < 100; i++)
            {
                publisher.Publish(i * 3);
            }
        });

        long expected = 0;
        await foreach (long value in reader.ReadAllAsync())
        {
            Assert.Equal(expected * 3, value);
            if (++expected == 100)
            {
                break;
            }
        }

        await publishing;
        Assert.Equal(0, subscriber.Drops);
    }

    [Fact]
    public void One_publisher_at_a_time_and_a_new_one_takes_over()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions());
        TopicPublisher first = topic.CreatePublisher();
        Assert.Throws<InvalidOperationException>(() => topic.CreatePublisher());
        first.Dispose();
        Assert.Throws<ObjectDisposedException>(() => first.Publish(Message(0)));
        using (TopicPublisher second = topic.CreatePublisher())
        {
            second.Publish(Message(0));
        }

        using ChildProcess child = HostOnBackend("topic-pub", segment.Name, "--topic", "t", "--count", "1", "--park");
        child.WaitForLine("published");
        Assert.True(topic.IsPublisherAlive);
        Assert.Throws<InvalidOperationException>(() => topic.CreatePublisher());
        child.Kill();
        WaitUntil(() => !topic.IsPublisherAlive, "the killed publisher seen dead");
        using TopicPublisher successor = topic.CreatePublisher();
        Assert.Equal(2, successor.Publish(Message(2)));
    }

    [Fact]
    public async Task A_dead_publisher_is_observable_by_a_waiting_subscriber()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions());
        using TopicSubscriber subscriber = topic.Subscribe();
        using ChildProcess child = HostOnBackend("topic-pub", segment.Name, "--topic", "t", "--count", "1", "--park");
        child.WaitForLine("published");
        Assert.True(subscriber.TryRead(out _));
        ValueTask<bool> waiting = subscriber.WaitToReadAsync();
        child.Kill();
        await Assert.ThrowsAsync<ChannelAbandonedException>(async () => await waiting);
    }

    [Fact]
    public async Task Fan_out_to_four_subscriber_processes_is_complete_and_in_order()
    {
        SharedSegment segment = NewSegment("topic", capacity: 4 << 20);
        using SharedTopic topic = SharedTopic.Create(segment, "fan", new SharedTopicOptions { BufferCount = 8, MinSize = 64, AckTimeout = TimeSpan.FromSeconds(60) });
        using TopicPublisher publisher = topic.CreatePublisher();
        await FanOutToChildrenAsync(segment.Name, "fan", subscribers: 4, count: 2000, lastId: 1999, () =>
        {
            for (long i = 0; i < 2000; i++)
            {
                publisher.Publish(Message(i));
            }
        });
    }

    [Fact]
    public void A_killed_subscriber_never_stalls_the_publisher()
    {
        SharedSegment segment = NewSegment("topic");
        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2, AckTimeout = TimeSpan.FromSeconds(60) });
        using (ChildProcess child = HostOnBackend("topic-sub", segment.Name, "--topic", "t", "--count", "1000000"))
        {
            child.WaitForLine("ready");
            child.Kill();
        }

        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 10; i++)
        {
            Assert.Equal(i, publisher.Publish(Message(i))); // the dead subscriber's acknowledgement is not waited for
        }
    }

    [Fact]
    public void Bad_input_and_damage_are_clear_exceptions()
    {
        SharedSegment segment = NewSegment("topic");
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedTopicOptions { BufferCount = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedTopicOptions { AckTimeout = TimeSpan.FromMinutes(2) });
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedTopic.Create(segment, "h", new SharedTopicOptions { BufferCount = 2, HistoryDepth = 3 }));
        Assert.Throws<ArgumentException>(() => SharedTopic.Create(segment, "../x", new SharedTopicOptions()));
        Assert.Throws<KeyNotFoundException>(() => SharedTopic.Open(segment, "missing"));

        using SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2, MinSize = 32, HashPayloads = true });
        Assert.Throws<InvalidOperationException>(() => SharedTopic.Create(segment, "t", new SharedTopicOptions()));
        Assert.Throws<ArgumentException>(() => SharedTopic.OpenOrCreate(segment, "t", new SharedTopicOptions()));
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        Assert.Throws<ArgumentException>(() => topic.Subscribe<Big>());

        // A payload damaged after it was published fails its hash.
        publisher.Publish(Message(0, 32));
        Span<byte> area = BufferArea(segment);
        area[64] ^= 0xFF; // buffer 0's first payload byte
        Assert.Throws<InvalidDataException>(() => subscriber.TryReceive(new byte[32], out _));

        // A header whose size is out of range is damage, not an access outside the buffer.
        publisher.Publish(Message(1, 32));
        BinaryPrimitives.WriteInt32LittleEndian(BufferArea(segment)[(int)(TopicStride(32) + 32)..], 1 << 30);
        Assert.Throws<InvalidSegmentException>(() => subscriber.TryReceive(new byte[32], out _));
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential, Size = 40)]
    private struct Big
    {
    }

    private static long TopicStride(int size) => (64 + size + 127) / 128 * 128;

    /// <summary>The topic's buffer area, from buffer 0's header (found by what message 0 wrote: version 2, id 0, clock 1, size 32).</summary>
    private static Span<byte> BufferArea(SharedSegment segment)
    {
        NamedObjectInfo info = segment.GetNamedObjects().Single(o => o.Name == "shmc.topic.t");
        Span<byte> control = segment.GetSpan(info.Handle);
        int at = control.IndexOf("SHMCTOP1"u8);
        var area = ShmHandle.FromValue(BinaryPrimitives.ReadUInt64LittleEndian(control[(at + 32)..]));
        Span<byte> block = segment.GetSpan(area);
        for (int p = 0; p + 64 <= block.Length; p += 8)
        {
            if (BinaryPrimitives.ReadInt64LittleEndian(block[p..]) == 2 && BinaryPrimitives.ReadInt64LittleEndian(block[(p + 8)..]) == 0 &&
                BinaryPrimitives.ReadInt64LittleEndian(block[(p + 16)..]) == 1 && BinaryPrimitives.ReadInt32LittleEndian(block[(p + 32)..]) == 32)
            {
                return block[p..];
            }
        }

        throw new InvalidOperationException("buffer 0's header was not found");
    }
}
