using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Threading.Channels;

namespace SharedMemChannels.TestHost;

/// <summary>
/// Roles for a topic's stream end to end (growth, completion):
/// <list type="bullet">
/// <item><c>topic-publisher SEGMENT --topic NAME [--create] [--notifier posix]</c>: becomes the publisher
/// (with --create: opens or creates the topic, 4 buffers of 64 bytes, history 4), prints "ready", then
/// obeys stdin: "publish SIZE" (a message of SIZE bytes, at least 8, its id in the first 8 and the rest
/// the id's low byte; prints "published id=ID"), "complete", "fail TYPE MESSAGE" (Complete with a
/// System.TYPE exception; prints "completed ok=true|false"), "exit".</item>
/// <item><c>topic-reader SEGMENT --topic NAME --mode readall|receive|borrow</c>: subscribes, prints "ready",
/// reads until the topic ends (await foreach over ReadAllAsync; a blocking Receive into a buffer writer;
/// or blocking Borrows), checking each message against its id, and prints
/// "ended n=N last=ID error=Type[:RemoteType:RemoteMessage]" (error=none when it ended normally).</item>
/// </list>
/// </summary>
internal static class TopicStreamRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("topic-publisher", Publisher);
        roles.Add("topic-reader", Reader);
    }

    /// <summary>The message <paramref name="id"/> of <paramref name="size"/> bytes: the id, then its low byte repeated.</summary>
    public static byte[] Message(long id, int size)
    {
        byte[] bytes = new byte[Math.Max(size, 8)];
        bytes.AsSpan(8).Fill((byte)id);
        BinaryPrimitives.WriteInt64LittleEndian(bytes, id);
        return bytes;
    }

    /// <summary>Whether <paramref name="payload"/> is <see cref="Message"/>'s message of id <paramref name="id"/>.</summary>
    public static bool IsMessage(ReadOnlySpan<byte> payload, long id) =>
        payload.Length >= 8 && BinaryPrimitives.ReadInt64LittleEndian(payload) == id && !payload[8..].ContainsAnyExcept((byte)id);

    private static int Publisher(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        var options = new SharedTopicOptions
        {
            BufferCount = 4,
            MinSize = 64,
            HistoryDepth = 4,
            Notifier = o.Has("notifier") ? ChannelNotifier.PosixSemaphore : ChannelNotifier.Futex,
        };
        using SharedTopic topic = o.Has("create") ? SharedTopic.OpenOrCreate(segment, o.Get("topic"), options) : SharedTopic.Open(segment, o.Get("topic"));
        using TopicPublisher publisher = topic.CreatePublisher();
        Console.WriteLine("ready");
        while (Console.ReadLine() is { } line && line != "exit")
        {
            string[] words = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            try
            {
                switch (words[0])
                {
                    case "publish":
                        long id = topic.MessageCount;
                        publisher.Publish(Message(id, int.Parse(words[1], CultureInfo.InvariantCulture)));
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"published id={id}"));
                        break;
                    case "complete":
                        Console.WriteLine($"completed ok={publisher.TryComplete()}");
                        break;
                    case "fail":
                        var error = (Exception)Activator.CreateInstance(Type.GetType("System." + words[1], throwOnError: true)!, words[2])!;
                        Console.WriteLine($"completed ok={publisher.TryComplete(error)}");
                        break;
                    default:
                        Console.WriteLine($"error UnknownCommand {words[0]}");
                        break;
                }
            }
            catch (Exception e)
            {
                Program.WriteError(e);
            }
        }

        return 0;
    }

    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedTopic topic = SharedTopic.Open(segment, o.Get("topic"));
        using TopicSubscriber subscriber = topic.Subscribe();
        Console.WriteLine("ready");
        int received = 0;
        long last = -1;
        string error = "none";
        try
        {
            switch (o.Get("mode"))
            {
                case "readall":
                    foreach (byte[] message in subscriber.ReadAllAsync().ToBlockingEnumerable())
                    {
                        Check(message, subscriber.LastMessage.Id);
                    }

                    break;
                case "receive":
                    var writer = new ArrayBufferWriter<byte>();
                    while (true)
                    {
                        writer.ResetWrittenCount();
                        subscriber.Receive(writer, Timeout.InfiniteTimeSpan, out TopicMessageInfo info);
                        Check(writer.WrittenSpan, info.Id);
                    }

                case "borrow":
                    while (true)
                    {
                        subscriber.Borrow(Timeout.InfiniteTimeSpan, out TopicMessage message);
                        using (message)
                        {
                            Check(message.Payload, message.Info.Id);
                        }
                    }

                default:
                    throw new ArgumentException($"unknown --mode {o.Get("mode")}");
            }
        }
        catch (Exception e) when (e is ChannelClosedException or RemoteChannelException or OperationCanceledException or ChannelRemovedException)
        {
            error = e.GetType().Name;
            if ((e as RemoteChannelException ?? e.InnerException as RemoteChannelException) is { } remote)
            {
                error += $":{remote.RemoteTypeName}:{remote.RemoteMessage.Replace(' ', '_')}";
            }
        }

        try
        {
            subscriber.Completion.Wait(TimeSpan.FromSeconds(60));
        }
        catch (AggregateException)
        {
            // faulted or canceled: the status says which
        }

        string completion = subscriber.Completion.Status.ToString();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ended n={received} last={last} error={error} completion={completion}"));
        return 0;

        void Check(ReadOnlySpan<byte> payload, long id)
        {
            if (id <= last || !IsMessage(payload, id))
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"message {id} after {last} is not its bytes"));
            }

            last = id;
            received++;
        }
    }
}
