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
            if (buffer.Length < topic.MaxMessageSize)
            {
                buffer = new byte[topic.MaxMessageSize]; // the publisher grew the buffers
            }

            if (!subscriber.TryReceive(buffer, out TopicMessageInfo info))
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
}
