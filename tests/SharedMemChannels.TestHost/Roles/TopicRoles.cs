using System.Buffers.Binary;
using System.Globalization;

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for <see cref="SharedTopic"/>: <c>topic-sub SEGMENT --topic NAME --count N</c>
/// subscribes, prints "ready", receives N messages (each carrying its own id in its first 8 bytes, checked,
/// in increasing order), and prints "got n=N drops=D last=L" (or "removed n=N ..." when the topic is
/// removed first); <c>topic-pub SEGMENT --topic NAME --count N [--create [--persistent]] [--park]</c> opens
/// (with --create: opens or creates, 4 buffers of 64 bytes, history 4) the topic, becomes the publisher,
/// publishes N messages, prints "published n=N", and with --park stays until killed.
/// </summary>
internal static class TopicRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("topic-sub", Subscribe);
        roles.Add("topic-pub", Publish);
        roles.Add("topic-damage", Damage);
        roles.Add("topic-churn", Churn);
    }

    private static int Subscribe(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedTopic topic = SharedTopic.Open(segment, o.Get("topic"));
        using TopicSubscriber subscriber = topic.Subscribe();
        int count = o.GetInt("count", 100);
        Console.WriteLine("ready");
        byte[] buffer = new byte[topic.MaxMessageSize];
        long last = -1;
        int received = 0;
        while (received < count)
        {
            if (!TryNext(out TopicMessageInfo info))
            {
                try
                {
                    if (!subscriber.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                    {
                        break;
                    }
                }
                catch (ChannelRemovedException)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"removed n={received} drops={subscriber.Drops} last={last}"));
                    return 0;
                }

                continue;
            }

            long id = BinaryPrimitives.ReadInt64LittleEndian(buffer);
            if (id != info.Id || info.Id <= last)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"error Order message {info.Id} carried {id} after {last}"));
                return 1;
            }

            last = info.Id;
            received++;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"got n={received} drops={subscriber.Drops} last={last}"));
        return 0;

        // The publisher may grow the buffers at any time, even between sizing the buffer and the copy: a
        // destination too small leaves the message to be read again into a larger one.
        bool TryNext(out TopicMessageInfo info)
        {
            while (true)
            {
                if (buffer.Length < topic.MaxMessageSize)
                {
                    buffer = new byte[topic.MaxMessageSize];
                }

                try
                {
                    return subscriber.TryReceive(buffer, out info);
                }
                catch (ArgumentException) when (buffer.Length < topic.MaxMessageSize)
                {
                }
            }
        }
    }

    private static int Publish(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedTopic topic = o.Has("create")
            ? SharedTopic.OpenOrCreate(segment, o.Get("topic"), new SharedTopicOptions { BufferCount = 4, MinSize = 64, HistoryDepth = 4, Persistent = o.Has("persistent") })
            : SharedTopic.Open(segment, o.Get("topic"));
        using TopicPublisher publisher = topic.CreatePublisher();
        int count = o.GetInt("count", 100);
        Console.WriteLine("publishing");
        byte[] payload = new byte[64];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(payload, topic.MessageCount);
            publisher.Publish(payload);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"published n={count}"));
        if (o.Has("park"))
        {
            Program.ParkUntilKilled();
        }

        return 0;
    }

    /// <summary>
    /// <c>topic-churn SEGMENT --topic NAME --count N</c>: N times opens or creates the topic, subscribes,
    /// publishes one message when it can take the publisher end, reads, and lets go of everything; prints
    /// "started" first and "churned n=N" at the end.
    /// </summary>
    private static int Churn(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        string name = o.Get("topic");
        int count = o.GetInt("count", 200);
        Console.WriteLine("started");
        for (int i = 0; i < count; i++)
        {
            ChurnOnce(segment, name, i);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"churned n={count}"));
        return 0;
    }

    /// <summary>One round of <see cref="Churn"/> (the test process runs it too).</summary>
    public static void ChurnOnce(SharedSegment segment, string name, long i)
    {
        using SharedTopic topic = SharedTopic.OpenOrCreate(segment, name, new SharedTopicOptions { BufferCount = 2, MinSize = 64 });
        using TopicSubscriber subscriber = topic.Subscribe();
        try
        {
            using TopicPublisher publisher = topic.CreatePublisher();
            publisher.Publish(i);
        }
        catch (InvalidOperationException)
        {
            // Another process publishes at the moment: one publisher at a time.
        }

        subscriber.TryReceive(new byte[topic.MaxMessageSize], out _);
    }

    /// <summary>
    /// <c>topic-damage NAME --seed S --rounds R</c>: in each round a topic with a publisher and two
    /// subscribers, some messages, then garbage over words of its control block, subscriber rows,
    /// references, type record, buffer headers or payloads; then every operation. Each must work or throw
    /// what the API documents; an undocumented exception or a hang prints "error ..." and exits 1. Ends
    /// with "damage ok rounds=R" and the outcomes.
    /// </summary>
    private static int Damage(Options o)
    {
        int seed = o.GetInt("seed", 1);
        int rounds = o.GetInt("rounds", 40);
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var options = new SegmentOptions { Backend = o.Backend, Capacity = 1 << 20, MaxCapacity = o.Backend == SharedMemoryBackend.SystemV ? 1 << 20 : 4 << 20 };
        for (int round = 0; round < rounds; round++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"{o.Name}-{round}");
            using SharedSegment segment = SharedSegment.Create(name, options);
            try
            {
                var topicOptions = new SharedTopicOptions
                {
                    BufferCount = random.Next(1, 9),
                    MinSize = random.Next(8, 512),
                    HashPayloads = random.Next(2) == 0,
                    AckTimeout = random.Next(3) == 0 ? TimeSpan.FromMilliseconds(20) : TimeSpan.Zero,
                };
                topicOptions.HistoryDepth = random.Next(0, topicOptions.BufferCount + 1);
                SharedTopic topic = SharedTopic.Create(segment, "victim", topicOptions);
                TopicPublisher publisher = topic.CreatePublisher();
                TopicSubscriber first = topic.Subscribe();
                TopicSubscriber<long> second = topic.Subscribe<long>();
                for (int i = 0, n = random.Next(0, 3 * topicOptions.BufferCount); i < n; i++)
                {
                    publisher.Publish((long)i);
                }

                string where = Corrupt(topic, random);
                foreach ((string what, Func<Task> operation) in Operations(segment, topic, publisher, first, second))
                {
                    string outcome = DamageWatchdog.Run(what, operation, where, Classify);
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                }

                foreach (IDisposable end in new IDisposable[] { publisher, first, second, topic })
                {
                    string outcome = DamageWatchdog.Run("dispose", () =>
                    {
                        end.Dispose();
                        return Task.CompletedTask;
                    }, where, Classify);
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                }
            }
            finally
            {
                SharedSegment.Remove(name);
            }
        }

        string summary = string.Join(' ', outcomes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}={p.Value}")));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"damage ok rounds={rounds} {summary}"));
        return 0;
    }

    /// <summary>Writes garbage over one or more of the topic's shared words; says where.</summary>
    private static string Corrupt(SharedTopic topic, Random random)
    {
        Topics.TopicCore core = topic.Core;
        Segments.SegmentMemory memory = core.Segment.Memory;
        long control = core.ControlOffset;
        (long buffers, long length) = core.Buffers;
        var places = new List<string>();
        for (int k = 0, n = random.Next(1, 4); k < n; k++)
        {
            (long at, string place) = random.Next(7) switch
            {
                6 => (control + Topics.TopicControl.CompletionStateOffset + (random.Next(0, 2) * 8), "completion"),
                0 => (control + (random.Next(0, 512 / 8) * 8), "control"),
                1 => (control + Topics.TopicControl.SubscribersOffset + (random.Next(0, 2 * Topics.TopicControl.SubscriberSize / 8) * 8), "subscriber-row"),
                2 => (control + Topics.TopicControl.ReferencesOffset + (random.Next(0, 256 / 8) * 8), "references"),
                3 => (control + Topics.TopicControl.MessageTypeOffset + (random.Next(0, Topics.TopicControl.MessageTypeCapacity / 8) * 8), "type"),
                4 => (buffers + (random.NextInt64(0, length / Topics.TopicLayout.LineSize) * Topics.TopicLayout.LineSize) + (random.Next(0, 8) * 8), "buffer-header"),
                _ => (buffers + (random.NextInt64(0, length / 8) * 8), "payload"),
            };
            long garbage = random.Next(4) switch
            {
                0 => random.NextInt64(),
                1 => -random.NextInt64(1, 1000),
                2 => Volatile.Read(ref memory.Int64(at)) + random.Next(-70, 70),
                _ => random.NextInt64(0, 1L << 40),
            };
            Volatile.Write(ref memory.Int64(at), garbage);
            places.Add(string.Create(CultureInfo.InvariantCulture, $"{place}@{at}=0x{garbage:x}"));
        }

        return string.Join(',', places);
    }

    private static IEnumerable<(string What, Func<Task> Operation)> Operations(SharedSegment segment, SharedTopic topic, TopicPublisher publisher, TopicSubscriber first, TopicSubscriber<long> second)
    {
        yield return ("count", () => Task.FromResult(first.Count));
        yield return ("size", () => Task.FromResult(topic.MaxMessageSize));
        yield return ("alive", () => Task.FromResult(topic.IsPublisherAlive));
        yield return ("type", () => Task.FromResult(topic.MessageType));
        for (int i = 0; i < 3; i++)
        {
            yield return ("publish", () => Task.FromResult(publisher.Publish(7L)));
            yield return ("receive", () => Task.FromResult(first.TryReceive(new byte[Math.Max(8, topic.MaxMessageSize)], out _)));
            yield return ("read", () => Task.FromResult(second.TryRead(out _)));
            yield return ("borrow", () =>
            {
                if (first.TryBorrow(out TopicMessage message))
                {
                    _ = message.Payload.Length;
                    message.Dispose();
                }

                return Task.CompletedTask;
            });
        }

        yield return ("receive-writer", () => Task.FromResult(first.TryReceive(new System.Buffers.ArrayBufferWriter<byte>(), out _)));
        yield return ("borrow-blocking", () =>
        {
            if (first.Borrow(TimeSpan.Zero, out TopicMessage message))
            {
                message.Dispose();
            }

            return Task.CompletedTask;
        });
        yield return ("publish-large", () => Task.FromResult(publisher.Publish(new byte[topic.MaxMessageSize + 100])));
        yield return ("waittoread", async () =>
        {
            using var cts = new CancellationTokenSource(50);
            await first.WaitToReadAsync(cts.Token);
        });
        yield return ("completion", async () =>
        {
            using var cts = new CancellationTokenSource(50);
            await second.Completion.WaitAsync(cts.Token);
        });
        yield return ("open", () =>
        {
            using SharedTopic again = SharedTopic.Open(segment, "victim");
            using TopicSubscriber third = again.Subscribe();
            third.TryReceive(new byte[Math.Max(8, again.MaxMessageSize)], out _);
            return Task.CompletedTask;
        });
        yield return ("exists", () => Task.FromResult(SharedTopic.Exists(segment, "victim")));
        yield return ("inspect", () => Task.FromResult(Diagnostics.SegmentDiagnostics.Inspect(segment.Name).Topics.Count));
        yield return ("complete", () => Task.FromResult(publisher.TryComplete(new TimeoutException("damaged"))));
        yield return ("receive-completed", () => Task.FromResult(first.Receive(new System.Buffers.ArrayBufferWriter<byte>(), TimeSpan.Zero, out _)));
        yield return ("remove", () => Task.FromResult(SharedTopic.Remove(segment, "victim")));
        yield return ("publish-removed", () => Task.FromResult(publisher.Publish(8L)));
    }

    /// <summary>Sorts what an operation on the damaged topic threw: its outcome name when the API documents it, else null.</summary>
    private static string? Classify(string what, Exception e)
    {
        switch (e)
        {
            case InvalidSegmentException:
                return what + "-damaged";
            case InvalidDataException: // a payload that fails its hash
            case System.Threading.Channels.ChannelClosedException: // removed, or a publisher that reads as dead
            case OperationCanceledException: // our bound on a pending wait
            case InvalidCastException when what is "read" or "type" or "publish" or "publish-removed": // a damaged size or type record
            case OutOfSharedMemoryException when what is "publish-large": // growth refused
            case ObjectDisposedException when what == "dispose":
                return what + "-" + e.GetType().Name;
            case InvalidOperationException when e.Message.Contains("removed", StringComparison.Ordinal) ||
                                                e.Message.Contains("publisher", StringComparison.Ordinal) ||
                                                e.Message.Contains("borrowed", StringComparison.Ordinal) ||
                                                e.Message.Contains("the most it records", StringComparison.Ordinal):
                return what + "-refused";
            default:
                return null;
        }
    }
}
