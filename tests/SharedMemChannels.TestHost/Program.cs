using System.Globalization;
using SharedMemChannels;
using SharedMemChannels.Segments;

namespace SharedMemChannels.TestHost;

/// <summary>A counter shared by racing processes.</summary>
internal struct Counter
{
    public int Magic;
    public int Count;
}

/// <summary>The README's example object.</summary>
internal struct Config
{
    public int Version;
    public ShmString Title;
    public ShmVector<double> Gains;
}

/// <summary>
/// The child process of the cross-process tests: one subcommand per role. Every role prints one line
/// when it has reached the state the test waits for, so that the test never sleeps to synchronize.
/// Output lines are "key=value" words; errors are "error Type message" and exit code 1.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: TestHost <role> <args...>");
            return 2;
        }

        try
        {
            var options = new Options(args[1..]);
            return args[0] switch
            {
                "hold" => Hold(options),
                "race" => Race(options),
                "create-stall" => CreateStall(options),
                "open" => OpenOnce(options),
                "read" => Read(options),
                "alloc-loop" => AllocLoop(options),
                "stress" => Stress(options),
                "lock-hold" => LockHold(options),
                "dir-lock-hold" => DirectoryLockHold(options),
                "obj-race" => ObjectRace(options),
                "obj-churn" => ObjectChurn(options),
                "corrupt-fuzz" => CorruptFuzz(options),
                "read-config" => ReadConfig(options),
                "write-config" => WriteConfig(options),
                "ring-claim" or "ec-pong" or "ring-write" => RingRoles.Run(args[0], args[1..]),
                _ => Unknown(args[0]),
            };
        }
        catch (Exception e)
        {
            Console.WriteLine($"error {e.GetType().Name} {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }

    private static int Unknown(string role)
    {
        Console.Error.WriteLine($"unknown role '{role}'");
        return 2;
    }

    /// <summary>Opens (or creates) a segment, says so, and stays attached until stdin says "exit" or closes.</summary>
    private static int Hold(Options o)
    {
        using SharedSegment segment = o.Has("create") ? SharedSegment.OpenOrCreate(o.Name, o.SegmentOptions()) : OpenAsked(o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ready pid={Environment.ProcessId} slot={segment.Owner.Slot} created={segment.IsCreator} base={segment.BaseAddress:x} capacity={segment.Capacity}"));
        return Serve(segment);
    }

    /// <summary>Commands a held segment understands on stdin, one per line.</summary>
    private static int Serve(SharedSegment segment)
    {
        string? line;
        while ((line = Console.ReadLine()) is not null && line != "exit")
        {
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            try
            {
                switch (words[0])
                {
                    case "alloc":
                        // alloc SIZE BYTE [segment]: allocate, fill with BYTE, print the handle.
                        ShmHandle handle = segment.Allocate(int.Parse(words[1], CultureInfo.InvariantCulture),
                            words.Length > 3 && words[3] == "segment" ? ShmOwnership.Segment : ShmOwnership.Process);
                        segment.GetSpan(handle).Fill(byte.Parse(words[2], CultureInfo.InvariantCulture));
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"handle={handle.Value} capacity={segment.Capacity} base={segment.BaseAddress:x}"));
                        break;
                    case "check":
                        // check HANDLE BYTE: is every byte of the block BYTE?
                        Span<byte> span = segment.GetSpan(ShmHandle.FromValue(ulong.Parse(words[1], CultureInfo.InvariantCulture)));
                        byte expected = byte.Parse(words[2], CultureInfo.InvariantCulture);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"checked length={span.Length} ok={!span.ContainsAnyExcept(expected)} capacity={segment.Capacity} base={segment.BaseAddress:x}"));
                        break;
                    case "free":
                        segment.Free(ShmHandle.FromValue(ulong.Parse(words[1], CultureInfo.InvariantCulture)));
                        Console.WriteLine("freed");
                        break;
                    default:
                        Console.WriteLine($"error UnknownCommand {words[0]}");
                        break;
                }
            }
            catch (Exception e)
            {
                Console.WriteLine($"error {e.GetType().Name} {e.Message.ReplaceLineEndings(" ")}");
            }
        }

        return 0;
    }

    /// <summary>Waits for "go" on stdin, then races OpenOrCreate and reports who created.</summary>
    private static int Race(Options o)
    {
        Console.WriteLine("waiting");
        if (Console.ReadLine() != "go")
        {
            return 2;
        }

        using SharedSegment segment = SharedSegment.OpenOrCreate(o.Name, o.SegmentOptions());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"result created={segment.IsCreator} creator={segment.Memory.Header.CreatorPid} pid={Environment.ProcessId}"));
        return Serve(segment);
    }

    /// <summary>Creates a segment and stops for good half way, before marking it ready: a test kills it there.</summary>
    private static int CreateStall(Options o)
    {
        SegmentTestHooks.BeforeReady = _ =>
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"initializing pid={Environment.ProcessId}"));
            ParkUntilKilled();
        };
        using SharedSegment segment = SharedSegment.Create(o.Name, o.SegmentOptions());
        return 3; // never reached
    }

    /// <summary>Opens once and reports the outcome (used to check permissions as another user).</summary>
    private static int OpenOnce(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"opened pid={Environment.ProcessId} capacity={segment.Capacity}"));
        return 0;
    }

    /// <summary>Opens and checks that the block HANDLE holds LENGTH bytes of BYTE.</summary>
    private static int Read(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Span<byte> span = segment.GetSpan(ShmHandle.FromValue(ulong.Parse(o.Get("handle"), CultureInfo.InvariantCulture)));
        byte expected = byte.Parse(o.Get("byte"), CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read length={span.Length} ok={!span.ContainsAnyExcept(expected)}"));
        return 0;
    }

    /// <summary>Allocates and frees random sizes forever (until killed); says "running" once under way.</summary>
    private static int AllocLoop(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        var random = new Random(o.GetInt("seed", Environment.ProcessId));
        var held = new List<ShmHandle>();
        int threads = o.GetInt("threads", 1);
        long iterations = 0;
        bool announced = false;
        var workers = new List<Thread>();
        for (int t = 1; t < threads; t++)
        {
            int seed = random.Next();
            var worker = new Thread(() => Churn(segment, new Random(seed), [], ref iterations, long.MaxValue)) { IsBackground = true };
            worker.Start();
            workers.Add(worker);
        }

        while (true)
        {
            Churn(segment, random, held, ref iterations, 200);
            if (!announced && Interlocked.Read(ref iterations) >= 1000)
            {
                Console.WriteLine("running");
                announced = true;
            }
        }
    }

    private static void Churn(SharedSegment segment, Random random, List<ShmHandle> held, ref long iterations, long rounds)
    {
        for (long i = 0; i < rounds; i++)
        {
            if (held.Count < 64 && (held.Count == 0 || random.Next(3) != 0))
            {
                int size = random.Next(4) == 0 ? random.Next(1, 64 * 1024) : random.Next(1, 1500);
                // Process-owned only: a segment-owned block rightly outlives its allocator, and the test
                // checks that everything the dead process owned comes back.
                if (segment.TryAllocate(size, out ShmHandle handle))
                {
                    segment.GetSpan(handle)[0] = 1;
                    held.Add(handle);
                }
            }
            else
            {
                int index = random.Next(held.Count);
                segment.Free(held[index]);
                held[index] = held[^1];
                held.RemoveAt(held.Count - 1);
            }

            Interlocked.Increment(ref iterations);
        }
    }

    /// <summary>
    /// Several threads allocate and free random sizes; every block is filled with a pattern of its owner
    /// and checked before it is freed. Prints "done blocks=N errors=0" and exits 0 when all is well.
    /// </summary>
    private static int Stress(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        int threads = o.GetInt("threads", 2);
        int iterations = o.GetInt("iterations", 10000);
        int seed = o.GetInt("seed", Environment.ProcessId);
        long errors = 0;
        long blocks = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                var random = new Random(seed * 31 + id);
                var held = new List<(ShmHandle Handle, byte Pattern)>();
                for (int i = 0; i < iterations; i++)
                {
                    if (held.Count < 100 && (held.Count == 0 || random.Next(2) == 0))
                    {
                        int size = random.Next(8) == 0 ? random.Next(1, 32 * 1024) : random.Next(1, 600);
                        if (!segment.TryAllocate(size, out ShmHandle handle))
                        {
                            continue;
                        }

                        byte pattern = (byte)((Environment.ProcessId * 7) + (id * 13) + i);
                        Span<byte> span = segment.GetSpan(handle);
                        if (span.Length != size)
                        {
                            Interlocked.Increment(ref errors);
                        }

                        span.Fill(pattern);
                        held.Add((handle, pattern));
                        Interlocked.Increment(ref blocks);
                    }
                    else
                    {
                        int index = random.Next(held.Count);
                        (ShmHandle handle, byte pattern) = held[index];
                        if (segment.GetSpan(handle).ContainsAnyExcept(pattern))
                        {
                            Interlocked.Increment(ref errors);
                        }

                        segment.Free(handle);
                        held[index] = held[^1];
                        held.RemoveAt(held.Count - 1);
                    }
                }

                foreach ((ShmHandle handle, byte pattern) in held)
                {
                    if (segment.GetSpan(handle).ContainsAnyExcept(pattern))
                    {
                        Interlocked.Increment(ref errors);
                    }

                    segment.Free(handle);
                }
            });
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done blocks={blocks} errors={errors}"));
        return errors == 0 ? 0 : 1;
    }

    /// <summary>Takes the heap lock and keeps it until killed (to test lock takeover from a dead holder).</summary>
    private static int LockHold(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        segment.HeapInternal.HoldLockForTest(() =>
        {
            Console.WriteLine("locked");
            ParkUntilKilled();
        });
        return 3;
    }

    /// <summary>Takes the named-object directory's lock and keeps it until killed.</summary>
    private static int DirectoryLockHold(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        segment.HoldDirectoryLockForTest(() =>
        {
            Console.WriteLine("locked");
            ParkUntilKilled();
        });
        return 3;
    }

    /// <summary>Waits for "go", then FindOrConstruct on a shared counter and increments it.</summary>
    private static int ObjectRace(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Console.WriteLine("waiting");
        if (Console.ReadLine() != "go")
        {
            return 2;
        }

        ShmPtr<Counter> counter = segment.FindOrConstruct(o.Get("object"), new Counter { Magic = 0xC0FFEE }, out bool created);
        int value = Interlocked.Increment(ref counter.Value.Count);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"result created={created} handle={counter.Handle.Value} magic={counter.Value.Magic} count={value}"));
        return 0;
    }

    /// <summary>Constructs and destroys named objects forever (until killed); says "running" once under way.</summary>
    private static int ObjectChurn(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        var random = new Random(o.GetInt("seed", Environment.ProcessId));
        for (long i = 0; ; i++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"k{random.Next(60)}");
            switch (random.Next(3))
            {
                case 0:
                    segment.FindOrConstruct(name, random.Next(), out _);
                    break;
                case 1:
                    segment.Destroy(name);
                    break;
                default:
                    segment.TryFind(name, out ShmPtr<int> value);
                    if (!value.IsNull)
                    {
                        value.Value++;
                    }

                    break;
            }

            if (i == 300)
            {
                Console.WriteLine("running");
            }
        }
    }

    /// <summary>
    /// Fills a segment with blocks, named objects and containers, overwrites random bytes of its heap and
    /// directory, then runs every operation on it. Each must either work or throw one of the exceptions
    /// the API documents; anything else (or a crash of this process) is a failure the test sees.
    /// </summary>
    private static int CorruptFuzz(Options o)
    {
        int seed = o.GetInt("seed", 1);
        int rounds = o.GetInt("rounds", 50);
        var random = new Random(seed);
        int outcomes = 0;
        for (int round = 0; round < rounds; round++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"{o.Name}-{round}");
            using (SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 256 * 1024, MaxCapacity = 4 * 1024 * 1024 }))
            {
                try
                {
                    var handles = new List<ShmHandle>();
                    for (int i = 0; i < 40; i++)
                    {
                        handles.Add(segment.Allocate(random.Next(1, 3000)));
                    }

                    for (int i = 0; i < 10; i++)
                    {
                        ShmPtr<Config> config = segment.Construct<Config>(string.Create(CultureInfo.InvariantCulture, $"obj{i}"));
                        config.Value.Title.Assign(segment, "some text");
                        config.Value.Gains.AddRange(segment, [1.0, 2.0, 3.0]);
                    }

                    handles.RemoveAll(h =>
                    {
                        bool free = random.Next(3) == 0;
                        if (free)
                        {
                            segment.Free(h);
                        }

                        return free;
                    });

                    // The damage: random bytes anywhere from the heap control block to the end.
                    long start = Segments.SegmentLayout.HeapControlOffset + 512; // past the lock words: a peer that holds the lock forever is a different failure
                    for (int k = 0, n = random.Next(1, 24); k < n; k++)
                    {
                        long at = start + (long)(random.NextDouble() * (segment.Capacity - start - 8));
                        segment.Memory.Span(at, 1)[0] = (byte)random.Next(256);
                    }

                    foreach (Action operation in Operations(segment, handles, random))
                    {
                        try
                        {
                            operation();
                        }
                        catch (Exception e) when (e is InvalidSegmentException or ArgumentException or InvalidOperationException or InvalidCastException or OutOfSharedMemoryException)
                        {
                            outcomes++;
                        }
                    }
                }
                finally
                {
                    SharedSegment.Remove(name);
                }
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fuzz ok rounds={rounds} exceptions={outcomes}"));
        return 0;
    }

    private static IEnumerable<Action> Operations(SharedSegment segment, List<ShmHandle> handles, Random random)
    {
        foreach (ShmHandle handle in handles)
        {
            yield return () => segment.GetSpan(handle).Fill(1);
        }

        for (int i = 0; i < 10; i++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"obj{i}");
            yield return () =>
            {
                if (segment.TryFind(name, out ShmPtr<Config> config))
                {
                    _ = config.Value.Title.ToString(segment);
                    _ = config.Value.Gains.AsSpan(segment).ToArray();
                    config.Value.Gains.Add(segment, 4.0);
                }
            };
        }

        for (int i = 0; i < 30; i++)
        {
            int size = random.Next(1, 5000);
            yield return () => segment.Free(segment.Allocate(size));
        }

        foreach (ShmHandle handle in handles)
        {
            yield return () => segment.Free(handle);
        }

        yield return () => segment.GetHeapStatistics();
        yield return () => segment.GetNamedObjects();
        yield return () => segment.ValidateHeap();
        yield return () => segment.Destroy("obj3");
        yield return () => segment.Construct<Config>("fresh");
        yield return () => segment.ReclaimDeadProcesses();
    }

    /// <summary>Reads the README's Config object and prints it.</summary>
    private static int ReadConfig(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        if (!segment.TryFind(o.Get("object"), out ShmPtr<Config> config))
        {
            Console.WriteLine("missing");
            return 1;
        }

        ref Config c = ref config.Value;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"config version={c.Version} title={c.Title.ToString(segment).Replace(' ', '_')} gains={string.Join(',', c.Gains.AsSpan(segment).ToArray())}"));
        return 0;
    }

    /// <summary>Creates the README's Config object, then stays attached until told to exit.</summary>
    private static int WriteConfig(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        ShmPtr<Config> config = segment.FindOrConstruct<Config>(o.Get("object"));
        ref Config c = ref config.Value;
        c.Version = 7;
        c.Title.Assign(segment, "written by the child");
        c.Gains.AddRange(segment, [1.5, 2.5]);
        Console.WriteLine("written");
        return Serve(segment);
    }

    /// <summary>Stops this thread for good: the test kills the process here.</summary>
    private static void ParkUntilKilled()
    {
        using var never = new ManualResetEventSlim();
        never.Wait();
    }

    private static SharedSegment OpenAsked(Options o) =>
        o.Has("backend") ? SharedSegment.Open(o.Name, o.SegmentOptions()) : SharedSegment.Open(o.Name);

    /// <summary>"NAME --key value --flag" arguments.</summary>
    private sealed class Options
    {
        private readonly Dictionary<string, string> _values = [];

        public Options(string[] args)
        {
            Name = args.Length > 0 ? args[0] : string.Empty;
            for (int i = 1; i < args.Length; i++)
            {
                string key = args[i].TrimStart('-');
                bool hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
                _values[key] = hasValue ? args[++i] : "true";
            }
        }

        public string Name { get; }

        public bool Has(string key) => _values.ContainsKey(key);

        public string Get(string key) => _values.TryGetValue(key, out string? value) ? value : throw new ArgumentException($"missing --{key}");

        public int GetInt(string key, int fallback) => _values.TryGetValue(key, out string? value) ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

        public SegmentOptions SegmentOptions()
        {
            var options = new SegmentOptions
            {
                Backend = _values.GetValueOrDefault("backend") == "sysv" ? SharedMemoryBackend.SystemV : SharedMemoryBackend.Posix,
                RemoveOnLastDetach = Has("remove-on-last-detach"),
            };
            if (_values.TryGetValue("capacity", out string? capacity))
            {
                options.Capacity = long.Parse(capacity, CultureInfo.InvariantCulture);
            }

            if (_values.TryGetValue("max", out string? max))
            {
                options.MaxCapacity = long.Parse(max, CultureInfo.InvariantCulture);
            }

            if (_values.TryGetValue("timeout-ms", out string? timeout))
            {
                options.OpenTimeout = TimeSpan.FromMilliseconds(int.Parse(timeout, CultureInfo.InvariantCulture));
            }

            return options;
        }
    }
}
