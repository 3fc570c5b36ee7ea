using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;

// The server hands on how each ValueTask completes (at once or later), so it looks at IsCompleted first, on purpose.
#pragma warning disable CA2012 // Use ValueTasks correctly

namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's roles for <see cref="SharedChannel{T}"/>: the other side of the conformance tests'
/// remote flavours (<c>channel-serve</c>), and the crash tests' writers, readers, holders and completers.
/// </summary>
/// <remarks>
/// <para>
/// <c>channel-serve SEGMENT [--backend B]</c> opens the segment and then serves one request per stdin
/// line, <c>ID OP CID ARGS...</c>, on channels it opens by request (<c>ID open CID NAME CAPACITY MODE
/// SINGLE_READER SINGLE_WRITER</c>: the channel is opened with <see cref="SharedChannel.Open{T}(SharedSegment, string, Action{T})"/>
/// and its stored options checked against those). Each request is started at once and never waited for
/// on the input thread, so pending operations run concurrently. The first answer to a request is
/// <c>ID done RESULT</c> when the operation completed synchronously, or <c>ID pending</c> followed later
/// by <c>ID done RESULT</c>. RESULT is <c>ok VALUES...</c> or <c>err TYPE MESSAGE64 [INNER_TYPE
/// INNER_MESSAGE64]</c> (messages in base64; the inner exception of a ChannelClosedException; a
/// <see cref="RemoteChannelException"/> is described by the remote type and message it stands for).
/// <c>cancel ID</c> cancels a pending request's token. An item a drop mode discards here is reported
/// as <c>dropped CID ITEM</c> before the answer to the write that dropped it.
/// </para>
/// </remarks>
internal static class ChannelRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("channel-serve", Serve);
        roles.Add("channel-writer", Writer);
        roles.Add("channel-reader", Reader);
        roles.Add("channel-hold", Hold);
        roles.Add("channel-complete", Complete);
        roles.Add("channel-damage", Damage);
        roles.Add("channel-churn", Churn);
    }

    // ---------------------------------------------------------------- channel-serve

    private static readonly object s_output = new();

    private static void Reply(string line)
    {
        lock (s_output)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static string Unb64(string text) => Encoding.UTF8.GetString(Convert.FromBase64String(text));

    /// <summary>TYPE MESSAGE64 of an exception; a stand-in is described by what it stands for.</summary>
    private static string Describe(Exception e) => e is RemoteChannelException remote
        ? $"{remote.RemoteTypeName} {B64(remote.RemoteMessage)}"
        : $"{e.GetType().FullName} {B64(e.Message)}";

    private static string Error(Exception e) =>
        e is ChannelClosedException { InnerException: { } inner } ? $"err {Describe(e)} {Describe(inner)}" : $"err {Describe(e)}";

    /// <summary>The exception a remote Complete(ex) asked for: the same type where it can be made here, with the message.</summary>
    private static Exception Rebuild(string typeName, string message)
    {
        if (Type.GetType(typeName, throwOnError: false) is { } type && typeof(Exception).IsAssignableFrom(type))
        {
            try
            {
                if (Activator.CreateInstance(type, message) is Exception made)
                {
                    return made;
                }
            }
            catch (MissingMethodException)
            {
            }
        }

        return new RemoteChannelException(typeName, message);
    }

    private static int Serve(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        var channels = new ConcurrentDictionary<int, SharedChannel<int>>();
        var pending = new ConcurrentDictionary<long, CancellationTokenSource>();
        Reply("ready");
        string? line;
        while ((line = Console.ReadLine()) is not null && line != "exit")
        {
            string[] w = line.Split(' ');
            if (w[0] == "cancel")
            {
                if (pending.TryGetValue(long.Parse(w[1], CultureInfo.InvariantCulture), out CancellationTokenSource? toCancel))
                {
                    try
                    {
                        toCancel.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }

                continue;
            }

            long id = long.Parse(w[0], CultureInfo.InvariantCulture);
            string op = w[1];
            int cid = int.Parse(w[2], CultureInfo.InvariantCulture);
            try
            {
                if (op == "open")
                {
                    string name = w[3];
                    SharedChannel<int> opened = SharedChannel.Open<int>(segment, name, item => Reply(string.Create(CultureInfo.InvariantCulture, $"dropped {cid} {item}")));
                    string stored = string.Create(CultureInfo.InvariantCulture, $"{opened.Capacity} {opened.FullMode} {opened.SingleReader} {opened.SingleWriter}");
                    string asked = string.Join(' ', w[4..8]);
                    if (stored != asked)
                    {
                        opened.Dispose();
                        throw new InvalidOperationException($"channel {name} has options '{stored}', the test asked for '{asked}'");
                    }

                    channels[cid] = opened;
                    Reply($"{id} done ok");
                    continue;
                }

                SharedChannel<int> c = channels[cid];
                var cts = new CancellationTokenSource();
                pending[id] = cts;
                Start(id, op, w, c, cts, pending);
            }
            catch (Exception e)
            {
                Reply($"{id} done {Error(e)}");
            }
        }

        foreach (SharedChannel<int> c in channels.Values)
        {
            c.Dispose();
        }

        return 0;
    }

    /// <summary>Starts one request; answers at once if it completed, else "pending" and the result later.</summary>
    private static void Start(long id, string op, string[] w, SharedChannel<int> c, CancellationTokenSource cts, ConcurrentDictionary<long, CancellationTokenSource> pending)
    {
        int Arg(int i) => int.Parse(w[i], CultureInfo.InvariantCulture);
        CancellationToken token = cts.Token;
        switch (op)
        {
            case "trywrite":
                Sync(id, () => c.Writer.TryWrite(Arg(3)).ToString());
                break;
            case "complete":
                Sync(id, () => c.Writer.TryComplete(w.Length > 3 ? Rebuild(Unb64(w[3]), Unb64(w[4])) : null).ToString());
                break;
            case "tryread":
                Sync(id, () => c.Reader.TryRead(out int item) ? $"True {item}" : "False 0");
                break;
            case "peek":
                Sync(id, () => c.Reader.TryPeek(out int item) ? $"True {item}" : "False 0");
                break;
            case "count":
                Sync(id, () => c.Reader.Count.ToString(CultureInfo.InvariantCulture));
                break;
            case "write":
                AsyncVoid(id, c.Writer.WriteAsync(Arg(3), token));
                break;
            case "waitwrite":
                Async(id, c.Writer.WaitToWriteAsync(token));
                break;
            case "read":
                Async(id, c.Reader.ReadAsync(token));
                break;
            case "waitread":
                Async(id, c.Reader.WaitToReadAsync(token));
                break;
            case "completion":
                AsyncVoid(id, new ValueTask(c.Reader.Completion));
                break;
            default:
                throw new ArgumentException($"unknown request '{op}'");
        }

        void Sync(long requestId, Func<string> run)
        {
            string result;
            try
            {
                result = "ok " + run();
            }
            catch (Exception e)
            {
                result = Error(e);
            }

            Done(requestId, result);
        }

        void Async<TResult>(long requestId, ValueTask<TResult> task)
        {
            if (task.IsCompleted)
            {
                Done(requestId, Outcome(() => Convert.ToString(task.GetAwaiter().GetResult(), CultureInfo.InvariantCulture)!));
                return;
            }

            Reply($"{requestId} pending");
            _ = task.AsTask().ContinueWith(t => Done(requestId, Outcome(() => Convert.ToString(t.GetAwaiter().GetResult(), CultureInfo.InvariantCulture)!)), TaskScheduler.Default);
        }

        void AsyncVoid(long requestId, ValueTask task)
        {
            if (task.IsCompleted)
            {
                Done(requestId, Outcome(() =>
                {
                    task.GetAwaiter().GetResult();
                    return string.Empty;
                }));
                return;
            }

            Reply($"{requestId} pending");
            _ = task.AsTask().ContinueWith(
                t => Done(requestId, Outcome(() =>
                {
                    t.GetAwaiter().GetResult();
                    return string.Empty;
                })),
                TaskScheduler.Default);
        }

        void Done(long requestId, string result)
        {
            if (pending.TryRemove(requestId, out CancellationTokenSource? source))
            {
                source.Dispose();
            }

            Reply($"{requestId} done {result}".TrimEnd());
        }

        static string Outcome(Func<string> result)
        {
            try
            {
                return "ok " + result();
            }
            catch (Exception e)
            {
                return Error(e);
            }
        }
    }

    // ---------------------------------------------------------------- crash-test roles

    private static SharedChannel<long> OpenChannel(Options o, SharedSegment segment) => SharedChannel.Open<long>(segment, o.Get("channel"));

    /// <summary>
    /// <c>channel-writer SEGMENT --channel NAME --id W [--every N] [--wait-go]</c>: writes (W &lt;&lt; 32) | n
    /// for n = 0, 1, ... for ever (TryWrite, and WaitToWriteAsync when full); prints "ready" once it holds
    /// the writer end (then, with --wait-go, waits for the line "go") and "committed n=K" after every
    /// N-th successful TryWrite (K items committed).
    /// </summary>
    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        long writer = o.GetInt("id", 1);
        int every = o.GetInt("every", 16);
        if (!channel.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
        {
            Console.WriteLine("error Closed the channel is completed");
            return 1;
        }

        Console.WriteLine("ready");
        if (o.Has("wait-go") && Console.ReadLine() != "go")
        {
            return 0;
        }

        for (long n = 0; ; n++)
        {
            long item = (writer << 32) | n;
            while (!channel.Writer.TryWrite(item))
            {
                if (!channel.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"closed committed n={n}"));
                    return 0;
                }
            }

            if ((n + 1) % every == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"committed n={n + 1}"));
            }
        }
    }

    /// <summary>
    /// <c>channel-reader SEGMENT --channel NAME</c>: reads until the channel is completed, printing
    /// "read v=ITEM" right after each item; "ready" once it holds the reader end, "end TYPE" at the end
    /// (the type of the ChannelClosedException that ended it).
    /// </summary>
    private static int Reader(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        _ = channel.Reader.TryPeek(out _); // takes the reader end
        Console.WriteLine("ready");
        while (true)
        {
            long item;
            try
            {
                item = channel.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (ChannelClosedException e)
            {
                Console.WriteLine($"end {e.GetType().Name}");
                return 0;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read v={item}"));
        }
    }

    /// <summary>
    /// <c>channel-hold SEGMENT --channel NAME --as reader|writer</c>: takes that end (a writer writes one
    /// item, 7), prints "holding", and stays until killed.
    /// </summary>
    private static int Hold(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        if (o.Get("as") == "writer")
        {
            if (!channel.Writer.TryWrite(7))
            {
                Console.WriteLine("error Full could not write");
                return 1;
            }
        }
        else
        {
            _ = channel.Reader.TryPeek(out _);
        }

        Console.WriteLine("holding");
        Program.ParkUntilKilled();
        return 3;
    }

    /// <summary>
    /// <c>channel-complete SEGMENT --channel NAME [--error TYPE --message TEXT]</c>: completes the channel
    /// (with an exception of that type made here) and exits; prints "completed ok=BOOL".
    /// </summary>
    private static int Complete(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<long> channel = OpenChannel(o, segment);
        Exception? error = o.Has("error") ? Rebuild(o.Get("error"), o.Has("message") ? o.Get("message") : string.Empty) : null;
        bool ok = channel.Writer.TryComplete(error);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"completed ok={ok}"));
        return 0;
    }

    /// <summary>
    /// <c>channel-churn SEGMENT --channel NAME --count N</c>: opens (or makes) the channel, writes and reads
    /// an item, and disposes it, N times, racing other processes doing the same; prints "started" before the
    /// first and "churned n=N" after the last.
    /// </summary>
    private static int Churn(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        string name = o.Get("channel");
        int count = o.GetInt("count", 200);
        var options = new SharedChannelOptions(8);
        Console.WriteLine("started");
        for (int i = 0; i < count; i++)
        {
            using SharedChannel<long> channel = SharedChannel.OpenOrCreateBounded<long>(segment, name, options);
            if (channel.Writer.TryWrite(i))
            {
                _ = channel.Reader.TryRead(out _);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"churned n={count}"));
        return 0;
    }

    // ---------------------------------------------------------------- channel-damage

    /// <summary>
    /// <c>channel-damage NAME --seed S --rounds R [--backend B]</c>: in each round makes a segment with a
    /// channel (MPMC or SPSC, random full mode), moves some items through it, writes garbage into its
    /// control block, ring header, head / tail and cell words, then runs every channel operation. Each must
    /// work or throw what the API documents for a damaged or closed channel, within a bounded time; a
    /// crash or a hang of this process is the failure the test sees. Prints "damage ok rounds=R ...".
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
                bool single = random.Next(2) == 0;
                var mode = single ? (BoundedChannelFullMode)(random.Next(2) * 3) : (BoundedChannelFullMode)random.Next(4);
                int capacity = random.Next(1, 40);
                var channelOptions = new SharedChannelOptions(capacity) { FullMode = mode, SingleReader = single, SingleWriter = single, SpinCount = 10 };
                SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "victim", channelOptions);
                for (int i = 0, n = random.Next(0, 3 * capacity); i < n; i++)
                {
                    channel.Writer.TryWrite(i);
                    if (random.Next(3) == 0)
                    {
                        channel.Reader.TryRead(out _);
                    }
                }

                string where = Corrupt(channel, random);
                foreach ((string what, Func<Task> operation) in Operations(segment, channel, random))
                {
                    string outcome = DamageWatchdog.Run(what, operation, where, Classify);
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                }

                channel.Dispose(); // never throws, damage or not: an exception here ends the role with an error
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

    /// <summary>Writes garbage over one or more of the channel's shared words; says where.</summary>
    private static string Corrupt(SharedChannel<long> channel, Random random)
    {
        var core = channel.Core;
        Segments.SegmentMemory memory = core.Segment.Memory;
        Rings.RingHeader header = core.Header;
        long ring = header.Offset;
        var places = new List<string>();
        for (int k = 0, n = random.Next(1, 4); k < n; k++)
        {
            long at;
            string place;
            switch (random.Next(6))
            {
                case 0:
                    at = core.ControlOffset + (random.Next(0, Channels.ChannelControl.Size / 8) * 8);
                    place = "control";
                    break;
                case 1:
                    at = ring + (random.Next(0, Rings.RingLayout.LineSize / 8) * 8);
                    place = "ring-header";
                    break;
                case 2:
                    at = ring + Rings.RingLayout.HeadOffset;
                    place = "head";
                    break;
                case 3:
                    at = ring + Rings.RingLayout.TailOffset;
                    place = "tail";
                    break;
                case 4:
                    at = ring + Rings.RingLayout.CompletionStateOffset + (random.Next(0, 3) * 8);
                    place = "completion";
                    break;
                default:
                    at = header.SlotAt(random.Next(0, header.SlotCount)) + (header.Kind == Rings.RingKind.Mpmc ? Rings.RingLayout.CellWordOffset : 0);
                    place = header.Kind == Rings.RingKind.Mpmc ? "cell-word" : "slot";
                    break;
            }

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

    private static IEnumerable<(string What, Func<Task> Operation)> Operations(SharedSegment segment, SharedChannel<long> channel, Random random)
    {
        ChannelWriter<long> writer = channel.Writer;
        ChannelReader<long> reader = channel.Reader;
        yield return ("count", () => Task.FromResult(reader.Count));
        yield return ("peek", () => Task.FromResult(reader.TryPeek(out _)));
        for (int i = 0; i < 5; i++)
        {
            yield return ("trywrite", () => Task.FromResult(writer.TryWrite(random.NextInt64())));
            yield return ("tryread", () => Task.FromResult(reader.TryRead(out _)));
        }

        // Pending operations are bounded by a token: a damaged ring that reads as empty (or full) is a
        // wait like any other; what must not happen is a spin, a crash or an unbounded sync call.
        yield return ("readasync", async () =>
        {
            using var cts = new CancellationTokenSource(200);
            await reader.ReadAsync(cts.Token);
        });
        yield return ("writeasync", async () =>
        {
            using var cts = new CancellationTokenSource(200);
            await writer.WriteAsync(5, cts.Token);
        });
        yield return ("waittoread", async () =>
        {
            using var cts = new CancellationTokenSource(200);
            await reader.WaitToReadAsync(cts.Token);
        });
        yield return ("waittowrite", async () =>
        {
            using var cts = new CancellationTokenSource(200);
            await writer.WaitToWriteAsync(cts.Token);
        });
        yield return ("completion", async () =>
        {
            using var cts = new CancellationTokenSource(200);
            await reader.Completion.WaitAsync(cts.Token);
        });
        yield return ("open", () =>
        {
            using SharedChannel<long> again = SharedChannel.Open<long>(segment, "victim");
            _ = again.Reader.Count;
            return Task.CompletedTask;
        });
        yield return ("exists", () => Task.FromResult(SharedChannel.Exists(segment, "victim")));
        yield return ("complete", () => Task.FromResult(writer.TryComplete(new FormatException("late"))));
        yield return ("drain", () =>
        {
            for (int i = 0; i < 100 && reader.TryRead(out _); i++)
            {
            }

            return Task.CompletedTask;
        });
        yield return ("remove", () => Task.FromResult(SharedChannel.Remove(segment, "victim")));
    }

    /// <summary>Sorts what an operation on the damaged channel threw: its outcome name when the API documents it, else null.</summary>
    private static string? Classify(string what, Exception e)
    {
        switch (e)
        {
            case InvalidSegmentException:
                return what + "-damaged";
            case ChannelClosedException: // includes ChannelAbandonedException; garbage that reads as a completion
            case OperationCanceledException: // our bound on a pending wait
                return what + "-" + e.GetType().Name;
            case InvalidCastException or TimeoutException when what == "open":
                // Open's documented refusals: a damaged element size reads as another type, a damaged
                // state word as a channel still being made by its (live) creator.
                return what + "-" + e.GetType().Name;
            case FormatException or RemoteChannelException when what == "completion":
                return what + "-faulted";
            case InvalidOperationException when what is "open" && e.Message.Contains("removed", StringComparison.Ordinal):
                return what + "-removed";
            default:
                return null;
        }
    }
}
