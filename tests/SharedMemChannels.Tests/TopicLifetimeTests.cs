using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Tests.Infrastructure;
using SharedMemChannels.Synchronization;
using SharedMemChannels.Topics;

namespace SharedMemChannels.Tests;

/// <summary>
/// Topic lifetime (reference counted across processes like channels, or persistent; removed explicitly),
/// topics woken by semaphores instead of futex words, and the message type a topic records.
/// </summary>
public sealed class TopicLifetimeTests : SegmentTest
{
    private SharedSegment SegmentWithDirectory(out long usedBefore)
    {
        SharedSegment segment = NewSegment("tlife");
        segment.Construct<int>("x"); // the directory's table exists before the baseline
        usedBefore = segment.GetHeapStatistics().UsedBytes;
        return segment;
    }

    private static byte[] Message(long id)
    {
        byte[] payload = new byte[64];
        BinaryPrimitives.WriteInt64LittleEndian(payload, id);
        return payload;
    }

    [Fact]
    public void The_last_holder_going_removes_the_topic_and_its_buffers()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedTopic topic = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 4, MinSize = 256 });
        TopicPublisher publisher = topic.CreatePublisher();
        TopicSubscriber subscriber = topic.Subscribe();
        publisher.Publish(Message(0));

        topic.Dispose(); // its publisher and subscriber still hold the topic
        Assert.True(SharedTopic.Exists(segment, "t"));
        Assert.True(subscriber.TryRead(out byte[] first));
        Assert.Equal(0, BinaryPrimitives.ReadInt64LittleEndian(first));
        Assert.Equal(1, Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics).References);

        publisher.Dispose();
        Assert.True(SharedTopic.Exists(segment, "t"));
        subscriber.Dispose(); // the last holder: the topic goes with its buffers
        Assert.False(SharedTopic.Exists(segment, "t"));
        Assert.Empty(SegmentDiagnostics.Inspect(segment.Name).Topics);
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
        Assert.Throws<KeyNotFoundException>(() => SharedTopic.Open(segment, "t"));

        // The name is free for a new topic of another shape.
        using SharedTopic again = SharedTopic.Create(segment, "t", new SharedTopicOptions { BufferCount = 2 });
        Assert.Equal(0, again.MessageCount);
    }

    [Fact]
    public void Two_views_in_one_process_are_two_references_and_churn_leaves_nothing()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        var options = new SharedTopicOptions { BufferCount = 2, MinSize = 64 };
        SharedTopic a = SharedTopic.OpenOrCreate(segment, "t", options);
        SharedTopic b = SharedTopic.OpenOrCreate(segment, "t", options);
        Assert.Equal(2, Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics).References);
        a.Dispose();
        Assert.True(SharedTopic.Exists(segment, "t"));
        b.Dispose();
        Assert.False(SharedTopic.Exists(segment, "t"));

        Parallel.For(0, 4, worker =>
        {
            for (int i = 0; i < 200; i++)
            {
                using SharedTopic topic = SharedTopic.OpenOrCreate(segment, "churn", options);
                using TopicSubscriber subscriber = topic.Subscribe();
                Assert.True(subscriber.Count >= 0);
            }
        });

        Assert.False(SharedTopic.Exists(segment, "churn"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_persistent_topic_keeps_its_history_for_a_subscriber_that_comes_after_the_publisher_left()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using (ChildProcess publisher = HostOnBackend("topic-pub", segment.Name, "--topic", "p", "--count", "6", "--create", "--persistent"))
        {
            Assert.Equal("published n=6", publisher.WaitForLine("published"));
            Assert.Equal(0, publisher.Finish());
        }

        Assert.True(SharedTopic.Exists(segment, "p"));
        TopicReport report = Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics);
        Assert.True(report.Persistent);
        Assert.Equal(0, report.References);
        using (SharedTopic topic = SharedTopic.Open(segment, "p"))
        using (TopicSubscriber late = topic.Subscribe())
        {
            var ids = new List<long>();
            while (late.TryRead(out byte[] message))
            {
                ids.Add(BinaryPrimitives.ReadInt64LittleEndian(message));
            }

            Assert.Equal([2L, 3L, 4L, 5L], ids); // history 4 of 6
        }

        Assert.True(SharedTopic.Exists(segment, "p")); // still persistent
        Assert.True(SharedTopic.Remove(segment, "p"));
        Assert.False(SharedTopic.Remove(segment, "p"));
        Assert.False(SharedTopic.Exists(segment, "p"));
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_topic_whose_only_holder_was_killed_goes_when_the_dead_are_reclaimed()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using (ChildProcess publisher = HostOnBackend("topic-pub", segment.Name, "--topic", "k", "--count", "3", "--create", "--park"))
        {
            publisher.WaitForLine("published");
            Assert.True(SharedTopic.Exists(segment, "k"));
            publisher.Kill();
        }

        WaitUntil(
            () =>
            {
                segment.ReclaimDeadProcesses();
                return !SharedTopic.Exists(segment, "k");
            },
            "the killed holder's topic destroyed");
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public async Task Removing_a_topic_ends_publishing_and_subscribers_read_what_is_buffered_then_see_it()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedTopic topic = SharedTopic.Create(segment, "r", new SharedTopicOptions { BufferCount = 4 });
        TopicPublisher publisher = topic.CreatePublisher();
        TopicSubscriber subscriber = topic.Subscribe();
        Task completion = subscriber.Completion;
        publisher.Publish(Message(7));

        using ChildProcess child = HostOnBackend("topic-sub", segment.Name, "--topic", "r", "--count", "1000000");
        child.WaitForLine("ready");

        Assert.True(SharedTopic.Remove(segment, "r"));
        Assert.True(topic.IsRemoved);
        Assert.Equal("removed n=0 drops=0 last=-1", child.WaitForLine("removed")); // its pending wait ended
        Assert.Equal(0, child.Finish());

        Assert.Throws<ChannelRemovedException>(() => publisher.Publish(Message(8)));
        Assert.Throws<ChannelRemovedException>(() => topic.Subscribe());
        Assert.Throws<InvalidOperationException>(() => SharedTopic.Open(segment, "r"));
        Assert.Throws<InvalidOperationException>(() => SharedTopic.OpenOrCreate(segment, "r", new SharedTopicOptions { BufferCount = 4 }));
        Assert.False(SharedTopic.Exists(segment, "r"));
        Assert.Equal("removed", Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics).State);

        Assert.True(subscriber.TryRead(out byte[] buffered)); // what was published before still arrives
        Assert.Equal(7, BinaryPrimitives.ReadInt64LittleEndian(buffered));
        await Assert.ThrowsAsync<ChannelRemovedException>(async () => await subscriber.WaitToReadAsync());
        await Assert.ThrowsAsync<ChannelRemovedException>(() => completion.WaitAsync(TimeSpan.FromSeconds(30)));

        publisher.Dispose();
        subscriber.Dispose();
        topic.Dispose();
        Assert.Empty(SegmentDiagnostics.Inspect(segment.Name).Topics);
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
        using SharedTopic fresh = SharedTopic.Create(segment, "r", new SharedTopicOptions());
        Assert.False(fresh.IsRemoved);
    }

    [Fact]
    public async Task Completion_of_a_disposed_subscriber_is_canceled_and_a_live_one_stays_pending()
    {
        SharedSegment segment = NewSegment("tlife");
        using SharedTopic topic = SharedTopic.Create(segment, "c", new SharedTopicOptions());
        using TopicSubscriber live = topic.Subscribe();
        TopicSubscriber leaving = topic.Subscribe();
        Task pending = live.Completion;
        Task canceled = leaving.Completion;
        leaving.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(pending.IsCompleted);
        Assert.Throws<ObjectDisposedException>(() => leaving.TryRead(out _));
    }

    [Theory]
    [InlineData(ChannelNotifier.PosixSemaphore)]
    [InlineData(ChannelNotifier.SystemVSemaphore)]
    public async Task A_topic_woken_by_semaphores_fans_out_losslessly_and_takes_its_semaphores_with_it(ChannelNotifier notifier)
    {
        SharedSegment segment = NewSegment("tsem", capacity: 4 << 20);
        var options = new SharedTopicOptions { BufferCount = 4, MinSize = 64, AckTimeout = TimeSpan.FromSeconds(60), Notifier = notifier };
        SharedTopic topic = SharedTopic.Create(segment, "s", options);
        Assert.Equal(notifier, Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics).Notifier);
        using (ChildProcess inspect = Shmc("inspect", segment.Name, "--json"))
        {
            Assert.Equal(0, inspect.WaitForExit());
            using JsonDocument json = JsonDocument.Parse(inspect.Transcript);
            JsonElement report = Assert.Single(json.RootElement.GetProperty("topics").EnumerateArray().ToArray());
            Assert.Equal(notifier == ChannelNotifier.PosixSemaphore ? "posixSemaphore" : "systemVSemaphore", report.GetProperty("notifier").GetString());
            Assert.Equal("previousMessage", report.GetProperty("ackPolicy").GetString());
            Assert.Equal(1, report.GetProperty("references").GetInt32());
        }

        NotifierFields fields = NotifierOf(segment, "s");
        Assert.Equal((int)notifier, fields.Kind);
        Assert.True(SemaphoresExist(segment, fields));
        Assert.Throws<ArgumentException>(() => SharedTopic.OpenOrCreate(segment, "s", new SharedTopicOptions { BufferCount = 4, MinSize = 64, AckTimeout = TimeSpan.FromSeconds(60) }));

        // Every message waits for both subscribers' acknowledgements: each one sleeps on the semaphore between messages.
        using (TopicPublisher publisher = topic.CreatePublisher())
        {
            await FanOutToChildrenAsync(segment.Name, "s", subscribers: 2, count: 300, lastId: 299, () =>
            {
                for (long i = 0; i < 300; i++)
                {
                    publisher.Publish(Message(i));
                }
            });
        }

        // An asynchronous wait in this process is served through the semaphore too.
        using (TopicSubscriber subscriber = topic.Subscribe())
        {
            ValueTask<bool> waiting = subscriber.WaitToReadAsync();
            using ChildProcess late = HostOnBackend("topic-pub", segment.Name, "--topic", "s", "--count", "1");
            Assert.True(await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(0, late.Finish());
        }

        topic.Dispose(); // the last reference: the semaphores go with the topic
        Assert.False(SemaphoresExist(segment, fields));
    }

    private static NotifierFields NotifierOf(SharedSegment segment, string topic)
    {
        NamedObjectInfo info = segment.GetNamedObjects().Single(o => o.Name == "shmc.topic." + topic);
        Span<byte> block = segment.GetSpan(info.Handle);
        return MemoryMarshal.Read<TopicControl>(block[block.IndexOf("SHMCTOP1"u8)..]).Notifier; // the value follows the entry's own header
    }

    private static bool SemaphoresExist(SharedSegment segment, NotifierFields fields)
    {
        if (fields.Kind == (int)ChannelNotifier.PosixSemaphore)
        {
            string stem = string.Create(CultureInfo.InvariantCulture, $"/dev/shm/sem.shmc.n.{segment.Name}.{fields.Id:x16}");
            bool first = File.Exists(stem + ".r");
            Assert.Equal(first, File.Exists(stem + ".w"));
            return first;
        }

        bool Exists(int key) => File.ReadLines("/proc/sysvipc/sem").Skip(1)
            .Any(line => int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture) == key);
        bool exists = Exists(fields.Key);
        Assert.Equal(exists, Exists(fields.Key + 1));
        return exists;
    }

    private sealed record Reading(string Sensor, double Value);

    /// <summary>A serializer of another identity over the same JSON bytes: a reader with it must be refused, not fed.</summary>
    private sealed class OtherSerializer : ISharedSerializer<Reading>
    {
        public string Identity => "other-json-v1";

        public void Serialize(IBufferWriter<byte> destination, in Reading value)
        {
            using var writer = new Utf8JsonWriter(destination);
            JsonSerializer.Serialize(writer, value);
        }

        public Reading Deserialize(ReadOnlySpan<byte> source) => JsonSerializer.Deserialize<Reading>(source)!;
    }

    [Fact]
    public void A_topic_records_its_message_type_and_refuses_ends_of_another()
    {
        SharedSegment segment = NewSegment("ttype");
        using SharedTopic topic = SharedTopic.Create(segment, "m", new SharedTopicOptions());
        Assert.Null(topic.MessageType);
        var json = new SystemTextJsonSharedSerializer<Reading>();
        using SerializedTopicSubscriber<Reading> subscriber = topic.Subscribe(json);
        Assert.Contains(json.Identity, topic.MessageType, StringComparison.Ordinal);
        Assert.Contains(nameof(Reading), topic.MessageType, StringComparison.Ordinal);
        Assert.Equal(topic.MessageType, Assert.Single(SegmentDiagnostics.Inspect(segment.Name).Topics).MessageType);

        // Another serializer, another type, or unmanaged messages: refused on both ends, nothing subscribed or published.
        Assert.Throws<InvalidCastException>(() => topic.Subscribe(new OtherSerializer()));
        Assert.Throws<InvalidCastException>(() => topic.Subscribe<long>());
        Assert.Throws<InvalidCastException>(() => topic.Subscribe(new SystemTextJsonSharedSerializer<string>()));
        using TopicPublisher publisher = topic.CreatePublisher();
        Assert.Throws<InvalidCastException>(() => publisher.Publish(new Reading("a", 1), new OtherSerializer()));
        Assert.Throws<InvalidCastException>(() => publisher.Publish(42L));
        Assert.Equal(0, topic.MessageCount);

        publisher.Publish(new Reading("a", 1.5), json);
        publisher.Publish(new Reading("b", 2.5), new SystemTextJsonSharedSerializer<Reading>()); // same identity, another instance
        Assert.True(subscriber.TryRead(out Reading? first));
        Assert.Equal(new Reading("a", 1.5), first);
        Assert.True(subscriber.TryRead(out Reading? second));
        Assert.Equal(new Reading("b", 2.5), second);

        // Unmanaged topics record their layout: another struct of the same size is refused.
        using SharedTopic ticks = SharedTopic.Create(segment, "u", new SharedTopicOptions());
        using TopicSubscriber<long> longs = ticks.Subscribe<long>();
        Assert.Throws<InvalidCastException>(() => ticks.Subscribe<double>());
        using TopicPublisher tickPublisher = ticks.CreatePublisher();
        Assert.Throws<InvalidCastException>(() => tickPublisher.Publish(1.0));
        tickPublisher.Publish(5L);
        Assert.True(longs.TryRead(out long value));
        Assert.Equal(5, value);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Garbage_in_a_topics_control_block_rows_and_buffers_is_an_exception_never_a_crash_or_a_hang(int seed)
    {
        // In a child: an access outside the mapping or an endless spin would take the test runner with it.
        using ChildProcess child = HostOnBackend("topic-damage", NewName("tdmg"), "--seed", seed.ToString(CultureInfo.InvariantCulture), "--rounds", "40");
        string line = child.WaitForLine("damage ok", TimeSpan.FromMinutes(5));
        Assert.StartsWith("damage ok rounds=40", line, StringComparison.Ordinal);
        Assert.Equal(0, child.Finish());
    }

    [Fact]
    public async Task A_blocking_receive_wakes_for_a_child_publisher_times_out_and_reports_a_dead_publisher_and_removal()
    {
        SharedSegment segment = NewSegment("trecv");
        using SharedTopic topic = SharedTopic.Create(segment, "b", new SharedTopicOptions { BufferCount = 4, MinSize = 64 });
        using TopicSubscriber subscriber = topic.Subscribe();
        byte[] buffer = new byte[topic.MaxMessageSize];
        Assert.Throws<ArgumentOutOfRangeException>(() => subscriber.Receive(buffer, TimeSpan.FromSeconds(-2), out _));
        Assert.False(subscriber.Receive(buffer, TimeSpan.Zero, out _));
        Assert.False(subscriber.Receive(buffer, TimeSpan.FromMilliseconds(20), out _));

        using (ChildProcess child = HostOnBackend("topic-pub", segment.Name, "--topic", "b", "--count", "3", "--park"))
        {
            // The receive blocks this thread before the child has published anything, and wakes for it.
            Task<long[]> receiving = Task.Run(() =>
            {
                long[] ids = new long[3];
                for (int i = 0; i < 3; i++)
                {
                    Assert.True(subscriber.Receive(buffer, TimeSpan.FromSeconds(60), out TopicMessageInfo info));
                    ids[i] = info.Id;
                    Assert.Equal(info, subscriber.LastMessage);
                }

                return ids;
            });
            long[] received = await receiving.WaitAsync(TimeSpan.FromSeconds(90));
            Assert.Equal(new long[] { 0, 1, 2 }, received);
            child.WaitForLine("published");
            child.Kill();
        }

        Assert.Throws<ChannelAbandonedException>(() => subscriber.Receive(buffer, Timeout.InfiniteTimeSpan, out _));
        Assert.True(SharedTopic.Remove(segment, "b"));
        Assert.Throws<ChannelRemovedException>(() => subscriber.Receive(buffer, TimeSpan.FromSeconds(60), out _));
    }

    [Fact]
    public async Task With_the_FreeBuffer_policy_the_publisher_runs_ahead_until_the_next_buffer_is_unread_then_waits()
    {
        SharedSegment segment = NewSegment("tfree");
        var options = new SharedTopicOptions { BufferCount = 4, MinSize = 64, AckTimeout = TimeSpan.FromSeconds(60), AckPolicy = TopicAckPolicy.FreeBuffer };
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedTopicOptions { AckPolicy = (TopicAckPolicy)9 });
        using SharedTopic topic = SharedTopic.Create(segment, "f", options);
        Assert.Throws<ArgumentException>(() => SharedTopic.OpenOrCreate(segment, "f", new SharedTopicOptions { BufferCount = 4, MinSize = 64, AckTimeout = TimeSpan.FromSeconds(60) }));
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        for (long i = 0; i < 4; i++)
        {
            Assert.Equal(i, publisher.Publish(Message(i))); // four buffers: no wait for an unread subscriber
        }

        Task<long> fifth = Task.Run(() => publisher.Publish(Message(4)));
        WaitUntil(() => Volatile.Read(ref topic.Core.Control.AckWaiters) > 0 || fifth.IsCompleted, "the publisher waiting for buffer 0");
        Assert.False(fifth.IsCompleted); // it waits for message 0, which buffer 0 still holds, to be read

        byte[] buffer = new byte[topic.MaxMessageSize];
        Assert.True(subscriber.TryReceive(buffer, out TopicMessageInfo first));
        Assert.Equal(0, first.Id);
        Assert.Equal(0, first.Dropped);
        Assert.Equal(4, await fifth.WaitAsync(TimeSpan.FromSeconds(60)));
        for (long i = 1; i <= 4; i++)
        {
            Assert.True(subscriber.TryReceive(buffer, out TopicMessageInfo info));
            Assert.Equal(i, info.Id);
        }

        Assert.Equal(0, subscriber.Drops);

        // Across processes: two subscribers that keep up lose nothing while the publisher runs up to four ahead.
        await FanOutToChildrenAsync(segment.Name, "f", subscribers: 2, count: 2000, lastId: 2004, () =>
        {
            for (long i = 5; i < 2005; i++)
            {
                publisher.Publish(Message(i));
                subscriber.TryReceive(buffer, out _); // this process's subscriber keeps up too
            }
        });
    }

    [Fact]
    public async Task Disposing_the_segment_ends_threads_blocked_in_its_waits_with_ObjectDisposedException()
    {
        SharedSegment segment = NewSegment("tblock");
        SharedTopic topic = SharedTopic.Create(segment, "w", new SharedTopicOptions { BufferCount = 1, AckTimeout = TimeSpan.FromSeconds(60) });
        TopicSubscriber reader = topic.Subscribe();
        TopicSubscriber stuck = topic.Subscribe(); // never reads: the publisher's second message waits for it
        TopicPublisher publisher = topic.CreatePublisher();
        publisher.Publish(Message(0));
        Assert.True(reader.TryRead(out _));
        using SharedEvent gate = SharedEvent.Create(segment, "gate", autoReset: false);

        var receiving = Task.Factory.StartNew(() => reader.Receive(new byte[64], Timeout.InfiniteTimeSpan, out _), TaskCreationOptions.LongRunning);
        var publishing = Task.Factory.StartNew(() => publisher.Publish(Message(1)), TaskCreationOptions.LongRunning);
        var waiting = Task.Factory.StartNew(() => gate.Wait(), TaskCreationOptions.LongRunning);
        WaitUntil(
            () => Volatile.Read(ref topic.Core.Control.MessageWaiters) > 0 && Volatile.Read(ref topic.Core.Control.AckWaiters) > 0,
            "the receiver and the publisher asleep");

        segment.Dispose(); // the three threads sleep on words of this mapping
        await Assert.ThrowsAsync<ObjectDisposedException>(() => receiving.WaitAsync(TimeSpan.FromSeconds(60)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => publishing.WaitAsync(TimeSpan.FromSeconds(60)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Throws<ObjectDisposedException>(() => reader.Receive(new byte[64], TimeSpan.Zero, out _));
        stuck.Dispose();
        reader.Dispose();
        publisher.Dispose();
        topic.Dispose();
    }

    [Fact]
    public void A_retired_area_handle_changed_to_name_another_block_is_not_freed_under_its_owner()
    {
        SharedSegment segment = NewSegment("tfree");
        ShmHandle someoneElses = segment.Allocate(4096, ShmOwnership.Segment);
        segment.GetSpan(someoneElses).Fill(0xAB);
        using SharedTopic topic = SharedTopic.Create(segment, "g", new SharedTopicOptions { BufferCount = 2, MinSize = 64 });
        using TopicPublisher publisher = topic.CreatePublisher();
        topic.Core.Control.RetiredBlock = someoneElses.Value; // a hostile peer's write
        publisher.Publish(new byte[1000]); // growth frees "the retired area"
        Span<byte> span = segment.GetSpan(someoneElses); // still allocated, still ours
        Assert.Equal(4096, span.Length);
        Assert.True(span.IndexOfAnyExcept((byte)0xAB) < 0);
        segment.Free(someoneElses);
    }

    [Fact]
    public void Processes_opening_and_disposing_one_topic_at_once_never_touch_a_destroyed_one()
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        using ChildProcess first = HostOnBackend("topic-churn", segment.Name, "--topic", "churn", "--count", "3000");
        using ChildProcess second = HostOnBackend("topic-churn", segment.Name, "--topic", "churn", "--count", "3000");
        first.WaitForLine("started");
        second.WaitForLine("started");
        for (int i = 0; i < 3000; i++)
        {
            using SharedTopic topic = SharedTopic.OpenOrCreate(segment, "churn", new SharedTopicOptions { BufferCount = 2, MinSize = 64 });
            using TopicSubscriber subscriber = topic.Subscribe();
            subscriber.TryReceive(new byte[topic.MaxMessageSize], out _);
        }

        Assert.Equal("churned n=3000", first.WaitForLine("churned"));
        Assert.Equal("churned n=3000", second.WaitForLine("churned"));
        Assert.Equal(0, first.Finish());
        Assert.Equal(0, second.Finish());
        Assert.False(SharedTopic.Exists(segment, "churn"));
        Assert.Empty(SegmentDiagnostics.Inspect(segment.Name).Topics);
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }

    [Fact]
    public void A_copy_of_a_released_borrow_cannot_read_or_release_a_later_one()
    {
        SharedSegment segment = NewSegment("tborrow");
        using SharedTopic topic = SharedTopic.Create(segment, "b", new SharedTopicOptions { BufferCount = 4, MinSize = 64 });
        using TopicSubscriber subscriber = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        publisher.Publish(Message(1));
        publisher.Publish(Message(2));
        Assert.True(subscriber.TryBorrow(out TopicMessage first));
        TopicMessage copy = first;
        first.Dispose();
        Assert.True(subscriber.TryBorrow(out TopicMessage second));
        Assert.Throws<ObjectDisposedException>(() => copy.Payload.Length);
        copy.Dispose(); // must not release the second borrow
        Assert.Equal(2, BinaryPrimitives.ReadInt64LittleEndian(second.Payload));
        Assert.Throws<InvalidOperationException>(() => subscriber.TryBorrow(out _)); // still held
        second.Dispose();
        Assert.False(subscriber.TryBorrow(out _));
    }

    private struct Tick
    {
        public long Sequence;
        public double Price;
    }

    [Fact]
    public void Publishing_and_receiving_allocate_nothing_in_steady_state()
    {
        SharedSegment segment = NewSegment("talloc");
        using SharedTopic topic = SharedTopic.Create(segment, "a", new SharedTopicOptions { BufferCount = 8, MinSize = 64, HashPayloads = true });
        using TopicSubscriber bytes = topic.Subscribe();
        using TopicPublisher publisher = topic.CreatePublisher();
        byte[] payload = Message(1);
        byte[] buffer = new byte[topic.MaxMessageSize];

        void Round(long i)
        {
            publisher.Publish(payload);
            Assert.True(bytes.TryReceive(buffer, out _));
            publisher.Publish(new Tick { Sequence = i, Price = 1.5 });
            Assert.True(bytes.Receive(buffer, TimeSpan.FromSeconds(10), out _));
            publisher.Publish(payload);
            Assert.True(bytes.TryBorrow(out TopicMessage message));
            message.Dispose();
        }

        for (long i = 0; i < 100; i++)
        {
            Round(i); // warm up (first calls, tiered compilation)
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long i = 0; i < 1000; i++)
        {
            Round(i);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(ChannelNotifier.Futex)]
    [InlineData(ChannelNotifier.PosixSemaphore)]
    [InlineData(ChannelNotifier.SystemVSemaphore)]
    public async Task Disposing_the_last_holder_under_a_blocked_receive_ends_it_and_then_frees_the_topic(ChannelNotifier notifier)
    {
        SharedSegment segment = SegmentWithDirectory(out long usedBefore);
        SharedTopic topic = SharedTopic.Create(segment, "d", new SharedTopicOptions { BufferCount = 2, Notifier = notifier });
        TopicSubscriber subscriber = topic.Subscribe();
        TopicSubscriber asyncSubscriber = topic.Subscribe();
        Topics.TopicCore core = topic.Core;
        topic.Dispose(); // the subscribers are the topic's last holders

        var blocked = Task.Factory.StartNew(() => subscriber.Receive(new byte[64], Timeout.InfiniteTimeSpan, out _), TaskCreationOptions.LongRunning);
        ValueTask<bool> pending = asyncSubscriber.WaitToReadAsync();
        WaitUntil(() => Volatile.Read(ref core.Control.MessageWaiters) >= 2, "both waits asleep on the topic");
        subscriber.Dispose();
        asyncSubscriber.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => blocked.WaitAsync(TimeSpan.FromSeconds(60)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(TimeSpan.FromSeconds(60)));
        WaitUntil(() => !SharedTopic.Exists(segment, "d"), "the topic freed by the last wait to leave");
        Assert.Equal(usedBefore, segment.GetHeapStatistics().UsedBytes);
    }
}
