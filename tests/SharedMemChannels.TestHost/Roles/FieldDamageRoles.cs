using System.Globalization;
using System.Threading.Channels;
using SharedMemChannels.Channels;
using SharedMemChannels.Rings;
using SharedMemChannels.Synchronization;
using SharedMemChannels.Topics;

namespace SharedMemChannels.TestHost;

/// <summary>
/// Damage one field at a time. Where the fuzz roles write random garbage at random places, this role
/// walks every field of a control block or header (channel, ring, topic, mutex, event, semaphore), writes
/// each of a few impossible values into it alone, and checks what every step then throws: opening the
/// object from a second attachment, using it, disposing it, removing it, disposing the segments. Damage
/// must be <see cref="InvalidSegmentException"/> (or a documented outcome of that step: a completed
/// channel, a bounded wait that ran out, another element type where the value is a possible one), and
/// disposing never throws at all.
/// </summary>
internal static class FieldDamageRoles
{
    /// <summary>How long one step may take before it counts as a hang.</summary>
    private static readonly TimeSpan StepLimit = TimeSpan.FromSeconds(60);

    private static readonly long[] Int32Values = [0, -1, int.MaxValue, 0x5A5A_5A5A];

    private static readonly long[] Int64Values = [0, -1, long.MaxValue, 0x5A5A_5A5A_5A5A_5A5A];

    public static void Register(Dictionary<string, Role> roles) => roles.Add("field-damage", FieldDamage);

    /// <summary>
    /// <c>field-damage NAME --object channel|spsc-ring|mpmc-ring|unbounded-ring|topic|mutex|event|semaphore
    /// [--field F] [--backend B]</c>: for each field (or only F) and each value, a fresh segment, the object
    /// made and used, the field overwritten, then every step. Prints "violation ..." for each step that threw
    /// what it must not (and goes on), then "field-damage done object=O cases=N damaged=D violations=V";
    /// exit 0 only without violations. A step that hangs prints "error Hang ..." and ends the process.
    /// </summary>
    private static int FieldDamage(Options o)
    {
        string kind = o.Get("object");
        string? only = o.Has("field") ? o.Get("field") : null;
        var run = new Run(o, kind);
        foreach (Field field in Fields(kind).Where(f => only is null || f.Name == only))
        {
            foreach (long value in field.Values ?? (field.Size == 4 ? Int32Values : Int64Values))
            {
                run.Case(field, value);
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"field-damage done object={kind} cases={run.Cases} damaged={run.Damaged} violations={run.Violations}"));
        return run.Violations == 0 ? 0 : 1;
    }

    /// <summary>
    /// A field: its name, where it is (from the object as made), its size, the values to write (null: the
    /// size's defaults) and the exception types a value there may legitimately cause besides damage.
    /// </summary>
    private sealed record Field(string Name, Func<Made, long> Locate, int Size, long[]? Values = null, params string[] Allows);

    /// <summary>What a case made: the segment, the object's handles, and where its blocks are.</summary>
    private sealed class Made
    {
        public required SharedSegment Segment { get; init; }

        public long Control { get; init; }

        public long Ring { get; init; }

        public long Area { get; init; }

        public List<IDisposable> Instances { get; } = [];

        public Func<SharedSegment, IDisposable>? Open { get; init; }

        public Func<IDisposable, IEnumerable<(string What, Func<Task> Step)>>? Use { get; init; }

        public Func<SharedSegment, bool>? Remove { get; init; }
    }

    private static IEnumerable<Field> Fields(string kind) => kind switch
    {
        "channel" => ChannelFields(),
        "spsc-ring" or "mpmc-ring" or "unbounded-ring" => RingFields(kind),
        "topic" => TopicFields(),
        "mutex" or "event" or "semaphore" => SyncFields(kind),
        _ => throw new ArgumentException($"unknown object '{kind}'"),
    };

    private static IEnumerable<Field> ChannelFields()
    {
        Func<Made, long> at(int offset) => m => m.Control + offset;
        yield return new("magic", at(0), 8);
        yield return new("version", at(8), 4);
        // 0 reads as "being laid out" by a live initializer (this process): a wait that times out.
        yield return new("state", at(12), 4, null, nameof(TimeoutException));
        yield return new("initializer", at(16), 4);
        yield return new("capacity", at(20), 4);
        yield return new("full-mode", at(24), 4);
        yield return new("flags", at(28), 4, null, nameof(ArgumentException));
        // Any fingerprint is a possible one: another element type.
        yield return new("element-fingerprint", at(32), 8, null, nameof(InvalidCastException));
        yield return new("element-size", at(40), 4);
        yield return new("ring-kind", at(44), 4);
        yield return new("ring-block", at(48), 8);
        yield return new("ring-offset", at(56), 8);
        yield return new("ring-length", at(64), 8);
        yield return new("created", at(72), 8);
        yield return new("type-name-length", at(80), 4);
        yield return new("element-kind", at(84), 4);
        yield return new("max-record-size", at(88), 4);
        yield return new("owned-handle-count", at(92), 4);
        yield return new("channel-id", at(96), 8);
        yield return new("serializer-fingerprint", at(104), 8);
        yield return new("serializer-identity-length", at(112), 4);
        yield return new("completion-seen", at(116), 4);
        yield return new("references", at(120), 4);
        yield return new("reader-lease", at(128), 4, null, nameof(InvalidOperationException));
        yield return new("writer-lease", at(132), 4, null, nameof(InvalidOperationException));
        yield return new("notifier-kind", at(136), 4);
        yield return new("notifier-first", at(140), 4);
        yield return new("notifier-second", at(144), 4);
        yield return new("owned-handle-0", at(ChannelControl.OwnedHandleOffsetsOffset), 4);
        yield return new("owned-handle-15", at(ChannelControl.OwnedHandleOffsetsOffset + 60), 4);
        yield return new("completion-sequence", at(ChannelControl.CompletionSequenceOffset), 4);
        yield return new("completion-waiters", at(ChannelControl.CompletionWaitersOffset), 4);
        yield return new("endpoint-0-owner", at(ChannelControl.EndpointsOffset), 4);
        yield return new("endpoint-0-roles", at(ChannelControl.EndpointsOffset + 4), 4);
        yield return new("endpoint-1-owner", at(ChannelControl.EndpointsOffset + ChannelControl.EndpointSize), 4);
    }

    private static IEnumerable<Field> RingFields(string kind)
    {
        Func<Made, long> at(int offset) => m => m.Ring + offset;
        yield return new("ring-magic", at(RingLayout.MagicOffset), 8);
        yield return new("ring-version", at(RingLayout.VersionOffset), 4);
        yield return new("ring-kind", at(RingLayout.KindOffset), 4);
        yield return new("ring-element-size", at(RingLayout.ElementSizeOffset), 4);
        yield return new("ring-capacity", at(RingLayout.CapacityOffset), 4);
        yield return new("ring-slot-count", at(RingLayout.SlotCountOffset), 4);
        yield return new("ring-cell-size", at(RingLayout.CellSizeOffset), 4);
        yield return new("ring-block-length", at(RingLayout.BlockLengthOffset), 8);
        yield return new("ring-lost", at(RingLayout.LostOffset), 8);
        yield return new("ring-skipped", at(RingLayout.SkippedOffset), 8);
        yield return new("ring-tail", at(RingLayout.TailOffset), 8);
        yield return new("ring-written", at(RingLayout.WrittenOffset), 8);
        yield return new("ring-dropped", at(RingLayout.DroppedOffset), 8);
        yield return new("ring-head", at(RingLayout.HeadOffset), 8);
        yield return new("ring-read", at(RingLayout.ReadOffset), 8);
        yield return new("ring-readers-sequence", at(RingLayout.ReadersEventSequenceOffset), 4);
        yield return new("ring-readers-waiters", at(RingLayout.ReadersEventWaitersOffset), 4);
        yield return new("ring-completion-state", at(RingLayout.CompletionStateOffset), 8);
        yield return new("ring-completion-type-length", at(RingLayout.CompletionStateOffset + 8), 4);
        yield return new("ring-completion-message-length", at(RingLayout.CompletionStateOffset + 12), 4);
        if (kind == "mpmc-ring")
        {
            yield return new("cell-word-0", m => m.Ring + RingLayout.SlotsOffset + RingLayout.CellWordOffset, 8);
        }
    }

    private static IEnumerable<Field> TopicFields()
    {
        Func<Made, long> at(int offset) => m => m.Control + offset;
        yield return new("magic", at(0), 8);
        yield return new("version", at(8), 4);
        yield return new("buffer-count", at(12), 4);
        yield return new("buffer-size", at(16), 4);
        yield return new("history-depth", at(20), 4);
        yield return new("ack-timeout", at(24), 4);
        yield return new("flags", at(28), 4);
        yield return new("buffers-block", at(32), 8);
        yield return new("created", at(40), 8);
        yield return new("state", at(48), 4);
        yield return new("message-type-length", at(52), 4);
        yield return new("retired-block", at(56), 8);
        yield return new("notifier-kind", at(64), 4);
        yield return new("message-type-fingerprint", at(80), 8, null, nameof(InvalidCastException));
        yield return new("created-buffer-size", at(88), 4);
        yield return new("publisher-lease", at(128), 4, null, nameof(InvalidOperationException));
        yield return new("next-sequence", at(TopicControl.NextSequenceOffset), 8);
        yield return new("clock", at(144), 8);
        yield return new("message-sequence", at(TopicControl.MessageSequenceOffset), 4);
        yield return new("ack-sequence", at(TopicControl.AckSequenceOffset), 4);
        yield return new("subscriber-0-owner", at(TopicControl.SubscribersOffset), 4);
        yield return new("subscriber-0-position", at(TopicControl.SubscribersOffset + 8), 8);
        yield return new("subscriber-0-drops", at(TopicControl.SubscribersOffset + 16), 8);
        yield return new("subscriber-0-acknowledged", at(TopicControl.SubscribersOffset + 24), 8);
        yield return new("subscriber-0-held-buffer", at(TopicControl.SubscribersOffset + 32), 4);
        yield return new("subscriber-0-held-version", at(TopicControl.SubscribersOffset + 40), 8);
        yield return new("reference-0", at(TopicControl.ReferencesOffset), 4);
        yield return new("area-magic", m => m.Area, 8);
        yield return new("area-buffer-size", m => m.Area + 8, 4);
        yield return new("area-buffer-count", m => m.Area + 12, 4);
        yield return new("buffer-0-version", m => m.Area + TopicLayout.LineSize, 8);
        yield return new("buffer-0-size", m => m.Area + TopicLayout.LineSize + 32, 4);
    }

    private static IEnumerable<Field> SyncFields(string kind)
    {
        Func<Made, long> at(int offset) => m => m.Control + offset;
        yield return new("magic", at(0), 8);
        yield return new("version", at(8), 4);
        // A possible kind (1 to 3) is another kind of object.
        yield return new("kind", at(12), 4, [0, -1, int.MaxValue, 0x5A5A_5A5A, 1, 2, 3], nameof(InvalidCastException));
        yield return new("flags", at(16), 4, null, nameof(ArgumentException));
        yield return new("maximum", at(20), 4, null, nameof(ArgumentException));
        yield return new("created", at(24), 8);
        yield return new("generation", at(32), 8);
        // The state word: a mutex's holder (a dead or impossible one is an abandoned mutex), an event's flag,
        // a semaphore's count.
        yield return new("state", at(SyncControl.StateOffset), 4, null, kind == "mutex" ? nameof(AbandonedMutexException) : nameof(SemaphoreFullException));
        yield return new("acquisitions", at(132), 4);
        yield return new("sequence", at(SyncControl.SequenceOffset), 4);
        yield return new("waiters", at(SyncControl.WaitersOffset), 4);
    }

    /// <summary>The cases of one run, and what they found.</summary>
    private sealed class Run(Options options, string kind)
    {
        private readonly SegmentOptions _segmentOptions = new()
        {
            Backend = options.Backend,
            Capacity = 1 << 20,
            MaxCapacity = options.Backend == SharedMemoryBackend.SystemV ? 1 << 20 : 8 << 20,
        };

        public int Cases { get; private set; }

        public int Damaged { get; private set; }

        public int Violations { get; private set; }

        public void Case(Field field, long value)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"{options.Name}-{Cases++}");
            string where = string.Create(CultureInfo.InvariantCulture, $"{kind}.{field.Name}=0x{value:x}");
            SharedSegment segment = SharedSegment.Create(name, _segmentOptions);
            SharedSegment? second = null;
            try
            {
                Made made = Make(segment);
                long at = field.Locate(made);
                if (field.Size == 4)
                {
                    Volatile.Write(ref segment.Memory.Int32(at), (int)value);
                }
                else
                {
                    Volatile.Write(ref segment.Memory.Int64(at), value);
                }

                // Open from a second attachment, as another process would (it maps the segment itself).
                IDisposable? opened = null;
                Step("open", where, field, () =>
                {
                    second = SharedSegment.Open(name, new SegmentOptions { Backend = options.Backend });
                    opened = made.Open!(second);
                    return Task.CompletedTask;
                });
                foreach (IDisposable instance in opened is null ? made.Instances : [.. made.Instances, opened])
                {
                    foreach ((string what, Func<Task> step) in made.Use!(instance))
                    {
                        Step(what, where, field, step);
                    }
                }

                // Disposing never throws, damage or not.
                if (opened is not null)
                {
                    Step("dispose-opened", where, null, () => { opened.Dispose(); return Task.CompletedTask; });
                }

                for (int i = made.Instances.Count - 1; i >= 0; i--)
                {
                    IDisposable instance = made.Instances[i];
                    Step("dispose", where, null, () => { instance.Dispose(); return Task.CompletedTask; });
                }

                Step("remove", where, field, () => Task.FromResult(made.Remove!(segment)));
            }
            finally
            {
                Step("dispose-segment", where, null, () =>
                {
                    second?.Dispose();
                    segment.Dispose();
                    return Task.CompletedTask;
                });
                SharedSegment.Remove(name, options.Backend);
            }
        }

        /// <summary>Runs a step under a watchdog and judges what it threw; a field of null allows nothing at all.</summary>
        private void Step(string what, string where, Field? field, Func<Task> step)
        {
            Task task;
            try
            {
                task = Task.Run(step);
            }
            catch (Exception thrown)
            {
                task = Task.FromException(thrown);
            }

            try
            {
                task.Wait(StepLimit);
            }
            catch (AggregateException)
            {
                // Judged below.
            }

            if (!task.IsCompleted)
            {
                Console.WriteLine($"error Hang {what} after damage {where}");
                Console.Out.Flush();
                Environment.Exit(1);
            }

            if (task.Exception?.InnerException is not { } e || (task.IsCanceled && field is not null))
            {
                return;
            }

            if (field is not null && e is InvalidSegmentException)
            {
                Damaged++;
                return;
            }

            if (field is not null && Allowed(what, field, e))
            {
                return;
            }

            Violations++;
            Console.WriteLine($"violation {what} after damage {where}: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} at {e.StackTrace?.ReplaceLineEndings(" | ")}");
        }

        /// <summary>What a step may throw besides damage: its documented outcomes, and what the field allows.</summary>
        private static bool Allowed(string what, Field field, Exception e) =>
            field.Allows.Contains(e.GetType().Name) ||
            e switch
            {
                OperationCanceledException => what != "open" && what != "remove", // a bounded wait that ran out
                ChannelClosedException => what != "open" && what != "remove",     // garbage that reads as a completion
                // Garbage that reads as a removed object (a zero magic, another generation): documented.
                InvalidOperationException when e.Message.Contains("removed", StringComparison.Ordinal) => true,
                // A single reader or writer end held by the other attachment (a live process): documented.
                InvalidOperationException when e.Message.Contains("another live process holds that end", StringComparison.Ordinal) => true,
                _ => false,
            };

        private Made Make(SharedSegment segment) => kind switch
        {
            "channel" or "mpmc-ring" => MakeChannel(segment, new SharedChannelOptions(8), unbounded: false),
            "spsc-ring" => MakeChannel(segment, new SharedChannelOptions(8) { SingleReader = true, SingleWriter = true }, unbounded: false),
            "unbounded-ring" => MakeChannel(segment, new SharedChannelOptions { ChunkCapacity = 4 }, unbounded: true),
            "topic" => MakeTopic(segment),
            _ => MakeSync(segment),
        };

        private static Made MakeChannel(SharedSegment segment, SharedChannelOptions channelOptions, bool unbounded)
        {
            channelOptions.SpinCount = 10;
            SharedChannel<long> channel = unbounded
                ? SharedChannel.CreateUnbounded<long>(segment, "victim", channelOptions)
                : SharedChannel.CreateBounded<long>(segment, "victim", channelOptions);
            for (int i = 0; i < 6; i++)
            {
                channel.Writer.TryWrite(i);
            }

            channel.Reader.TryRead(out _);
            var made = new Made
            {
                Segment = segment,
                Control = channel.Core.ControlOffset,
                Ring = channel.Core.Header.Offset,
                Open = s => SharedChannel.Open<long>(s, "victim"),
                Use = i => ChannelSteps((SharedChannel<long>)i),
                Remove = s => SharedChannel.Remove(s, "victim"),
            };
            made.Instances.Add(channel);
            return made;
        }

        private static IEnumerable<(string, Func<Task>)> ChannelSteps(SharedChannel<long> channel)
        {
            ChannelWriter<long> writer = channel.Writer;
            ChannelReader<long> reader = channel.Reader;
            yield return ("count", () => Task.FromResult(reader.Count));
            yield return ("peek", () => Task.FromResult(reader.TryPeek(out _)));
            yield return ("trywrite", () => Task.FromResult(writer.TryWrite(7)));
            yield return ("tryread", () => Task.FromResult(reader.TryRead(out _)));
            yield return ("readasync", async () =>
            {
                using var cts = new CancellationTokenSource(100);
                await reader.ReadAsync(cts.Token);
            });
            yield return ("writeasync", async () =>
            {
                using var cts = new CancellationTokenSource(100);
                await writer.WriteAsync(8, cts.Token);
            });
            yield return ("completion", async () =>
            {
                using var cts = new CancellationTokenSource(100);
                await reader.Completion.WaitAsync(cts.Token);
            });
            yield return ("complete", () => Task.FromResult(writer.TryComplete()));
            yield return ("drain", () =>
            {
                for (int i = 0; i < 20 && reader.TryRead(out _); i++)
                {
                }

                return Task.CompletedTask;
            });
        }

        private static Made MakeTopic(SharedSegment segment)
        {
            SharedTopic topic = SharedTopic.Create(segment, "victim", new SharedTopicOptions { BufferCount = 4, MinSize = 256, HistoryDepth = 2 });
            TopicPublisher publisher = topic.CreatePublisher();
            TopicSubscriber subscriber = topic.Subscribe();
            for (int i = 0; i < 3; i++)
            {
                publisher.Publish(new byte[32]);
            }

            var made = new Made
            {
                Segment = segment,
                Control = topic.Core.ControlOffset,
                Area = topic.Core.Buffers.Start - TopicLayout.LineSize,
                Open = s => new TopicHold(SharedTopic.Open(s, "victim"), null, null),
                Use = i => TopicSteps((TopicHold)i),
                Remove = s => SharedTopic.Remove(s, "victim"),
            };
            made.Instances.Add(new TopicHold(topic, publisher, subscriber));
            return made;
        }

        private static IEnumerable<(string, Func<Task>)> TopicSteps(TopicHold hold)
        {
            yield return ("message-count", () => Task.FromResult(hold.Topic.MessageCount));
            yield return ("message-type", () => Task.FromResult(hold.Topic.MessageType));
            yield return ("subscribe", () =>
            {
                hold.Topic.Subscribe().Dispose();
                return Task.CompletedTask;
            });
            if (hold.Publisher is { } publisher)
            {
                yield return ("publish", () => Task.FromResult(publisher.Publish(new byte[32])));
            }

            if (hold.Subscriber is { } subscriber)
            {
                yield return ("try-receive", () => Task.FromResult(subscriber.TryReceive(new byte[1 << 20], out _)));
                yield return ("receive", () => Task.FromResult(subscriber.Receive(new byte[1 << 20], TimeSpan.FromMilliseconds(100), out _)));
                yield return ("borrow", () =>
                {
                    if (subscriber.TryBorrow(out TopicMessage message))
                    {
                        message.Dispose();
                    }

                    return Task.CompletedTask;
                });
                yield return ("wait-to-read", async () =>
                {
                    using var cts = new CancellationTokenSource(100);
                    await subscriber.WaitToReadAsync(cts.Token);
                });
            }
        }

        private Made MakeSync(SharedSegment segment)
        {
            SharedSyncObject sync = kind switch
            {
                "mutex" => SharedMutex.Create(segment, "victim"),
                "event" => SharedEvent.Create(segment, "victim", autoReset: false),
                _ => SharedSemaphore.Create(segment, "victim", initialCount: 1, maximumCount: 4),
            };
            long control = segment.Attachment.Directory.FindOrConstruct(SyncLayout.ObjectName("victim"), default(SyncControl), mayFind: true, mayCreate: false, out _).ValueOffset;
            string k = kind;
            var made = new Made
            {
                Segment = segment,
                Control = control,
                Open = s => k switch
                {
                    "mutex" => SharedMutex.Open(s, "victim"),
                    "event" => SharedEvent.Open(s, "victim"),
                    _ => SharedSemaphore.Open(s, "victim"),
                },
                Use = i => SyncSteps((SharedSyncObject)i),
                Remove = s => k switch
                {
                    "mutex" => SharedMutex.Remove(s, "victim"),
                    "event" => SharedEvent.Remove(s, "victim"),
                    _ => SharedSemaphore.Remove(s, "victim"),
                },
            };
            made.Instances.Add(sync);
            return made;
        }

        private static IEnumerable<(string, Func<Task>)> SyncSteps(SharedSyncObject sync)
        {
            yield return ("wait", () =>
            {
                if (sync.Wait(TimeSpan.FromMilliseconds(100)) && sync is SharedMutex mutex)
                {
                    mutex.Release();
                }

                return Task.CompletedTask;
            });
            yield return ("wait-async", async () =>
            {
                using var cts = new CancellationTokenSource(100);
                await sync.WaitAsync(cts.Token);
                if (sync is SharedMutex mutex)
                {
                    mutex.Release();
                }
            });
            switch (sync)
            {
                case SharedEvent e:
                    yield return ("set", () => { e.Set(); return Task.CompletedTask; });
                    yield return ("reset", () => { e.Reset(); return Task.CompletedTask; });
                    break;
                case SharedSemaphore s:
                    yield return ("release", () => Task.FromResult(s.Release()));
                    break;
            }
        }
    }

    /// <summary>A topic with the publisher and subscriber this process made on it, disposed together.</summary>
    private sealed class TopicHold(SharedTopic topic, TopicPublisher? publisher, TopicSubscriber? subscriber) : IDisposable
    {
        public SharedTopic Topic { get; } = topic;

        public TopicPublisher? Publisher { get; } = publisher;

        public TopicSubscriber? Subscriber { get; } = subscriber;

        public void Dispose()
        {
            Subscriber?.Dispose();
            Publisher?.Dispose();
            Topic.Dispose();
        }
    }
}
