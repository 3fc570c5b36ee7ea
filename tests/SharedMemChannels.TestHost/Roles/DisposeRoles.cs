using System.Threading.Channels;

namespace SharedMemChannels.TestHost;

/// <summary>
/// Roles of the disposal tests (DisposalTests): use after a segment or channel was disposed, and threads
/// racing a dispose. A bug here faults on an unmapped page and kills the process (exit 134): that is why
/// they run in a child, so that the test sees a crashed child instead of a dead test run. Each prints one
/// line per operation, <c>op=NAME RESULT</c> (the exception's type name, or <c>ok</c>), and <c>done</c> at the end.
/// </summary>
internal static class DisposeRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("after-dispose", AfterDispose);
        roles.Add("dispose-race", DisposeRace);
        roles.Add("dispose-under-waits", DisposeUnderWaits);
    }

    /// <summary>A writer's and a reader's view of one channel of some kind, as the roles use them.</summary>
    private sealed record Ends(IDisposable Channel, Func<bool> TryWrite, Func<bool> TryRead, ChannelReader<object?> Reader, ChannelWriter<object?> Writer);

    /// <summary>
    /// <c>after-dispose SEGMENT --kind spsc|mpmc|unbounded|prioritized|records|serialized|sync|objects</c>: makes a segment
    /// and the kind's objects, uses them once, disposes the segment, then calls every operation.
    /// </summary>
    private static int AfterDispose(Options o)
    {
        string kind = o.Get("kind");
        var segment = SharedSegment.Create(o.Name, new SegmentOptions { Capacity = 1 << 20, MaxCapacity = 16 << 20, RemoveOnLastDetach = true });
        var operations = new List<(string Name, Action Run)>();
        switch (kind)
        {
            case "sync":
            {
                var mutex = SharedMutex.Create(segment, "m");
                var ev = SharedEvent.Create(segment, "e", autoReset: true);
                var semaphore = SharedSemaphore.Create(segment, "s", 1, 4);
                operations.Add(("mutex.Wait", () => mutex.Wait(TimeSpan.Zero)));
                operations.Add(("mutex.WaitAsync", () => mutex.WaitAsync(TimeSpan.FromSeconds(5)).AsTask().GetAwaiter().GetResult()));
                operations.Add(("mutex.Release", mutex.Release));
                operations.Add(("mutex.IsHeldByThisProcess", () => _ = mutex.IsHeldByThisProcess));
                operations.Add(("event.Set", () => ev.Set()));
                operations.Add(("event.Reset", () => ev.Reset()));
                operations.Add(("event.IsSet", () => _ = ev.IsSet));
                operations.Add(("event.AutoReset", () => _ = ev.AutoReset));
                operations.Add(("semaphore.Release", () => semaphore.Release()));
                operations.Add(("semaphore.CurrentCount", () => _ = semaphore.CurrentCount));
                operations.Add(("semaphore.MaximumCount", () => _ = semaphore.MaximumCount));
                operations.Add(("semaphore.WaitAsync", () => semaphore.WaitAsync(TimeSpan.FromSeconds(5)).AsTask().GetAwaiter().GetResult()));
                break;
            }

            case "objects":
            {
                ShmString text = ShmString.Create(segment, "hello");
                ShmVector<int> numbers = ShmVector.Create<int>(segment, [1, 2, 3]);
                ShmPtr<long> ptr = segment.FindOrConstruct<long>("counter");
                ShmHandle block = segment.Allocate(64);
                operations.Add(("ShmString.ToString", () => text.ToString(segment)));
                operations.Add(("ShmString.Append", () => text.Append(segment, "!")));
                operations.Add(("ShmString.Free", () => text.Free(segment)));
                operations.Add(("ShmVector.GetCount", () => numbers.GetCount(segment)));
                operations.Add(("ShmVector.Add", () => numbers.Add(segment, 4)));
                operations.Add(("ShmVector.Free", () => numbers.Free(segment)));
                operations.Add(("ShmPtr.Value", () => _ = ptr.Value));
                operations.Add(("segment.GetSpan", () => segment.GetSpan(block)));
                operations.Add(("segment.Free", () => segment.Free(block)));
                operations.Add(("segment.Allocate", () => segment.Allocate(64)));
                break;
            }

            default:
            {
                Ends ends = Open(segment, "ch", kind);
                ends.TryWrite();
                ends.TryWrite();
                ends.TryRead();
                operations.Add(("TryWrite", () => ends.TryWrite()));
                operations.Add(("TryRead", () => ends.TryRead()));
                operations.Add(("Count", () => _ = ends.Reader.Count));
                operations.Add(("ReadAsync", () => ends.Reader.ReadAsync().AsTask().GetAwaiter().GetResult()));
                operations.Add(("WaitToReadAsync", () => ends.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()));
                operations.Add(("WriteAsync", () => ends.Writer.WriteAsync(null).AsTask().GetAwaiter().GetResult()));
                operations.Add(("WaitToWriteAsync", () => ends.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult()));
                operations.Add(("TryComplete", () => ends.Writer.TryComplete()));
                operations.Add(("Completion", () => _ = ends.Reader.Completion));
                operations.Add(("Dispose", ends.Channel.Dispose));
                break;
            }
        }

        Console.WriteLine("ready");
        segment.Dispose();
        foreach ((string name, Action run) in operations)
        {
            Console.WriteLine($"op={name} {Outcome(run)}");
        }

        Console.WriteLine("done");
        return 0;
    }

    /// <summary>
    /// <c>dispose-race SEGMENT --kind K --target segment|channel --rounds N</c>: per round, two threads write
    /// and read a fresh channel of kind K (or wait on a sync object, for kind sync) without pause while the
    /// main thread disposes the segment (or the channel); every thread must end with ObjectDisposedException
    /// (a channel disposed under its users leaves the heap whole: checked by the segment's validation).
    /// </summary>
    private static int DisposeRace(Options o)
    {
        string kind = o.Get("kind");
        bool channelOnly = o.Has("target") && o.Get("target") == "channel";
        int rounds = o.GetInt("rounds", 20);
        var outcomes = new Dictionary<string, int>();
        for (int round = 0; round < rounds; round++)
        {
            string name = $"{o.Name}-{round}";
            var segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 1 << 20, MaxCapacity = 16 << 20, RemoveOnLastDetach = true });
            Ends ends = Open(segment, "ch", kind);
            using var started = new CountdownEvent(2);
            var users = new Thread[2];
            var results = new string[2];
            for (int t = 0; t < users.Length; t++)
            {
                int me = t;
                users[t] = new Thread(() =>
                {
                    started.Signal();
                    results[me] = Outcome(() =>
                    {
                        while (true)
                        {
                            if (me == 0)
                            {
                                ends.TryWrite();
                            }
                            else
                            {
                                ends.TryRead();
                            }
                        }
                    });
                });
                users[t].Start();
            }

            started.Wait();
            Thread.SpinWait(1000 * (round % 10));
            if (channelOnly)
            {
                ends.Channel.Dispose();
            }
            else
            {
                segment.Dispose();
            }

            foreach (Thread user in users)
            {
                user.Join();
            }

            if (channelOnly)
            {
                segment.Attachment.Heap.Validate();
                segment.Dispose();
            }

            foreach (string result in results)
            {
                outcomes[result] = outcomes.GetValueOrDefault(result) + 1;
            }

            Console.WriteLine($"round {round}: {string.Join(", ", results)}");
        }

        foreach ((string result, int count) in outcomes)
        {
            Console.WriteLine($"op=race {result} {count}");
        }

        Console.WriteLine("done");
        return 0;
    }

    /// <summary>
    /// <c>dispose-under-waits SEGMENT --rounds N --waits W</c>: per round, W pending asynchronous waits on each
    /// of an event, a semaphore and a channel, one on a mutex, and threads blocked in their synchronous waits, then the segment is
    /// disposed; each wait must end with ObjectDisposedException and the process must live on (a wait that
    /// resumed after the unmap used to fault in the waiter's pass over its words).
    /// </summary>
    private static int DisposeUnderWaits(Options o)
    {
        int rounds = o.GetInt("rounds", 10);
        var outcomes = new Dictionary<string, int>();
        for (int round = 0; round < rounds; round++)
        {
            var segment = SharedSegment.Create($"{o.Name}-{round}", new SegmentOptions { Capacity = 1 << 20, MaxCapacity = 16 << 20, RemoveOnLastDetach = true });
            using var mutex = SharedMutex.Create(segment, "m");
            using var ev = SharedEvent.Create(segment, "e", autoReset: false);
            using var semaphore = SharedSemaphore.Create(segment, "s", 0, 4);
            var channel = SharedChannel.CreateBounded<long>(segment, "ch", new SharedChannelOptions(4));
            mutex.Wait(); // held: the other waits on it below cannot take it
            var waits = new List<(string Name, Task Task)>();
            using var cts = new CancellationTokenSource();
            for (int i = 0; i < o.GetInt("waits", 100); i++)
            {
                waits.Add(("event.WaitAsync", ev.WaitAsync().AsTask()));
                waits.Add(("semaphore.WaitAsync", semaphore.WaitAsync(cts.Token).AsTask()));
                waits.Add(("channel.ReadAsync", channel.Reader.ReadAsync().AsTask()));
            }

            waits.Add(("event.Wait", Task.Factory.StartNew(() => ev.Wait(TimeSpan.FromSeconds(60)), TaskCreationOptions.LongRunning)));
            waits.Add(("semaphore.Wait(token)", Task.Factory.StartNew(() => semaphore.Wait(TimeSpan.FromSeconds(60), cts.Token), TaskCreationOptions.LongRunning)));

            // The other process's view of "held": a second segment instance cannot take the mutex this one holds.
            // Waited for asynchronously from a second attachment of the same segment.
            var second = SharedSegment.Open($"{o.Name}-{round}");
            var secondMutex = SharedMutex.Open(second, "m");
            waits.Add(("mutex.WaitAsync", secondMutex.WaitAsync().AsTask()));

            // Let the waits go to sleep (into a slice or two of the old machinery), then pull the segment away.
            Thread.Sleep(20 + (round * 37 % 100));
            segment.Dispose();
            second.Dispose();
            foreach ((string name, Task task) in waits)
            {
                string result;
                try
                {
                    if (!task.Wait(TimeSpan.FromSeconds(60)))
                    {
                        result = "hung";
                    }
                    else
                    {
                        result = "ok";
                    }
                }
                catch (AggregateException e)
                {
                    result = e.InnerException!.GetType().Name;
                }

                string key = $"{name} {result}";
                outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
            }

            // Outlive a few slices of the old machinery: a wait that re-registered after the detach faulted here.
            Thread.Sleep(150);
            channel.Dispose();
            secondMutex.Dispose();
        }

        foreach ((string result, int count) in outcomes.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"op={result} {count}");
        }

        Console.WriteLine("done");
        return 0;
    }

    private static string Outcome(Action run)
    {
        try
        {
            run();
            return "ok";
        }
        catch (Exception e)
        {
            return e.GetType().Name;
        }
    }

    private static Ends Open(SharedSegment segment, string name, string kind)
    {
        switch (kind)
        {
            case "spsc":
            case "mpmc":
            case "unbounded":
            case "prioritized":
            {
                var options = new SharedChannelOptions(64) { SingleReader = kind == "spsc", SingleWriter = kind == "spsc" };
                SharedChannel<long> channel = kind switch
                {
                    "unbounded" => SharedChannel.CreateUnbounded<long>(segment, name, new SharedChannelOptions()),
                    "prioritized" => SharedChannel.CreateUnboundedPrioritized<long>(segment, name, new SharedChannelOptions()),
                    _ => SharedChannel.CreateBounded<long>(segment, name, options),
                };
                return new Ends(channel, () => channel.Writer.TryWrite(1), () => channel.Reader.TryRead(out _), new Boxing<long>(channel.Reader), new BoxingWriter<long>(channel.Writer, 1));
            }

            case "records":
            {
                SharedRecordChannel channel = SharedChannel.CreateRecords(segment, name, new SharedChannelOptions(64));
                return new Ends(
                    channel,
                    () =>
                    {
                        ShmRecord record = channel.Writer.Allocate(32);
                        if (!channel.Writer.TryWrite(record))
                        {
                            record.Dispose();
                            return false;
                        }

                        return true;
                    },
                    () =>
                    {
                        if (!channel.Reader.TryRead(out ShmRecord record))
                        {
                            return false;
                        }

                        record.Dispose();
                        return true;
                    },
                    new Boxing<ShmRecord>(channel.Reader),
                    new RecordWriter(channel));
            }

            case "serialized":
            {
                SharedChannel<Trade> channel = SharedChannel.CreateBounded(segment, name, new SharedChannelOptions(64), TradeSerializers.For("memorypack"));
                Trade trade = Trade.Make(1);
                return new Ends(channel, () => channel.Writer.TryWrite(trade), () => channel.Reader.TryRead(out _), new Boxing<Trade>(channel.Reader), new BoxingWriter<Trade>(channel.Writer, trade));
            }

            default:
                throw new ArgumentException($"unknown kind '{kind}'");
        }
    }

    /// <summary>A reader seen as a reader of objects (the roles call every kind the same way).</summary>
    private sealed class Boxing<T>(ChannelReader<T> inner) : ChannelReader<object?>
    {
        public override Task Completion => inner.Completion;

        public override bool CanCount => inner.CanCount;

        public override int Count => inner.Count;

        public override bool TryRead(out object? item)
        {
            bool read = inner.TryRead(out T? value);
            item = value;
            return read;
        }

        public override async ValueTask<object?> ReadAsync(CancellationToken cancellationToken = default) => await inner.ReadAsync(cancellationToken).ConfigureAwait(false);

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => inner.WaitToReadAsync(cancellationToken);
    }

    /// <summary>A writer of objects that writes a fixed value of the channel's type.</summary>
    private sealed class BoxingWriter<T>(ChannelWriter<T> inner, T value) : ChannelWriter<object?>
    {
        public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);

        public override bool TryWrite(object? item) => inner.TryWrite(value);

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => inner.WaitToWriteAsync(cancellationToken);

        public override ValueTask WriteAsync(object? item, CancellationToken cancellationToken = default) => inner.WriteAsync(value, cancellationToken);
    }

    /// <summary>A record writer of objects: allocates a record per write (an allocation after the dispose is the first use).</summary>
    private sealed class RecordWriter(SharedRecordChannel channel) : ChannelWriter<object?>
    {
        public override bool TryComplete(Exception? error = null) => channel.Writer.TryComplete(error);

        public override bool TryWrite(object? item) => channel.Writer.TryWrite(channel.Writer.Allocate(32));

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => channel.Writer.WaitToWriteAsync(cancellationToken);

        public override ValueTask WriteAsync(object? item, CancellationToken cancellationToken = default) => channel.Writer.WriteAsync(channel.Writer.Allocate(32), cancellationToken);
    }
}
