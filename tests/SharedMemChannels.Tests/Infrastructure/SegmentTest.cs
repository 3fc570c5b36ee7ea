namespace SharedMemChannels.Tests.Infrastructure;

/// <summary>
/// Base of the tests that make segments or children: names it hands out and children it starts are
/// removed and killed when the test ends, whether it passed or not. Segments are made through it, of the
/// <see cref="Backend"/> a subclass chooses, so that one abstract test class runs on every backend.
/// </summary>
public abstract class SegmentTest : IDisposable
{
    private readonly List<string> _names = [];
    private readonly List<ChildProcess> _children = [];
    private readonly List<IDisposable> _disposables = [];

    /// <summary>A fresh name, removed (both backends) when the test ends.</summary>
    protected string NewName(string tag = "seg")
    {
        string name = TestRun.Name(tag);
        _names.Add(name);
        return name;
    }

    /// <summary>
    /// The size of a System V segment where a POSIX one would grow. System V segments cannot grow, so they
    /// get their room up front; a few MiB, because every page is populated when the segment is made.
    /// </summary>
    protected const long SystemVCapacity = 4 << 20;

    /// <summary>
    /// The backend of the segments this test makes with <see cref="NewSegment"/>, <see cref="NewOptions"/>,
    /// <see cref="OpenSegment"/> and the children it starts with <see cref="HostOnBackend"/>. POSIX unless a
    /// subclass says otherwise: a test base runs once per backend through one sealed subclass each.
    /// </summary>
    protected virtual SharedMemoryBackend Backend => SharedMemoryBackend.Posix;

    /// <summary>The test host's spelling of <see cref="Backend"/>, for "--backend".</summary>
    protected string BackendArgument => Backend == SharedMemoryBackend.SystemV ? "sysv" : "posix";

    /// <summary>
    /// Options of this test's backend for a segment that starts at <paramref name="capacity"/> and may grow
    /// to <paramref name="max"/>. A System V segment cannot grow: it is made at once as large as the POSIX
    /// one could become, up to <see cref="SystemVCapacity"/> (and never smaller than <paramref name="capacity"/>).
    /// </summary>
    protected SegmentOptions NewOptions(long capacity = 1 << 20, long max = 64 << 20)
    {
        if (Backend == SharedMemoryBackend.SystemV)
        {
            long size = Math.Max(capacity, Math.Min(max, SystemVCapacity));
            return new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = size, MaxCapacity = size };
        }

        return new SegmentOptions { Backend = Backend, Capacity = capacity, MaxCapacity = max };
    }

    /// <summary>Creates a segment of this test's backend with a fresh name, disposed and removed when the test ends.</summary>
    protected SharedSegment NewSegment(string tag = "seg", long capacity = 1 << 20, long max = 64 << 20) =>
        CreateSegment(NewName(tag), NewOptions(capacity, max));

    /// <summary>
    /// Creates a segment, disposed when the test ends. The options must be of this test's backend (take them
    /// from <see cref="NewOptions"/>): a test that runs on both backends must not quietly make POSIX segments.
    /// </summary>
    protected SharedSegment CreateSegment(string name, SegmentOptions options) =>
        OnThisBackend(Track(SharedSegment.Create(name, OfThisBackend(options))));

    /// <summary>Opens or creates a segment (options as for <see cref="CreateSegment"/>), disposed when the test ends.</summary>
    protected SharedSegment OpenOrCreateSegment(string name, SegmentOptions options) =>
        OnThisBackend(Track(SharedSegment.OpenOrCreate(name, OfThisBackend(options))));

    /// <summary>Opens an existing segment of this test's backend, disposed when the test ends.</summary>
    protected SharedSegment OpenSegment(string name) =>
        OnThisBackend(Track(SharedSegment.Open(name, new SegmentOptions { Backend = Backend })));

    /// <summary>Disposes <paramref name="item"/> when the test ends (before names are removed).</summary>
    protected T Track<T>(T item)
        where T : IDisposable
    {
        _disposables.Add(item);
        return item;
    }

    /// <summary>Starts a test host child, killed when the test ends.</summary>
    internal ChildProcess Host(params string[] args)
    {
        ChildProcess child = ChildProcess.Host(args);
        _children.Add(child);
        return child;
    }

    /// <summary>Starts a test host child that opens segments of this test's backend ("--backend" appended), killed when the test ends.</summary>
    internal ChildProcess HostOnBackend(params string[] args) => Host([.. args, "--backend", BackendArgument]);

    /// <summary>
    /// Fan-out to child processes: starts <paramref name="subscribers"/> test-host subscribers of
    /// <paramref name="topic"/> for <paramref name="count"/> messages each, waits until every one is
    /// subscribed, runs <paramref name="publish"/> on a pool thread, and checks that each child got all of
    /// them in order, without a drop, the last one <paramref name="lastId"/>.
    /// </summary>
    internal async Task FanOutToChildrenAsync(string segment, string topic, int subscribers, int count, long lastId, Action publish)
    {
        var children = new List<ChildProcess>();
        try
        {
            for (int i = 0; i < subscribers; i++)
            {
                ChildProcess child = HostOnBackend("topic-sub", segment, "--topic", topic, "--count", count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                children.Add(child);
                child.WaitForLine("ready");
            }

            await Task.Run(publish);
            foreach (ChildProcess child in children)
            {
                Assert.Equal(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"got n={count} drops=0 last={lastId}"), child.WaitForLine("got"));
                Assert.Equal(0, child.Finish());
            }
        }
        finally
        {
            children.ForEach(c => c.Dispose());
        }
    }

    /// <summary>Starts a test host child as another user, killed when the test ends.</summary>
    internal ChildProcess HostAsUser(int uid, int gid, params string[] args)
    {
        ChildProcess child = ChildProcess.HostAsUser(uid, gid, args);
        _children.Add(child);
        return child;
    }

    /// <summary>Starts the shmc tool, killed when the test ends.</summary>
    internal ChildProcess Shmc(params string[] args)
    {
        ChildProcess child = ChildProcess.Shmc(args);
        _children.Add(child);
        return child;
    }

    /// <summary>Starts the shmc tool with these environment variables, killed when the test ends.</summary>
    internal ChildProcess Shmc(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        ChildProcess child = ChildProcess.Shmc(environment, args);
        _children.Add(child);
        return child;
    }

    public void Dispose()
    {
        foreach (ChildProcess child in _children)
        {
            child.Dispose();
        }

        for (int i = _disposables.Count - 1; i >= 0; i--)
        {
            try
            {
                _disposables[i].Dispose();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
        }

        foreach (string name in _names)
        {
            TestRun.RemoveAll(n => TestRun.Unprefixed(n) == name);
        }

        GC.SuppressFinalize(this);
    }

    private SegmentOptions OfThisBackend(SegmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Backend != Backend)
        {
            throw new ArgumentException($"This test runs on {Backend}, but the options are for {options.Backend}: take them from NewOptions.", nameof(options));
        }

        return options;
    }

    /// <summary>The matrix proves nothing if a "System V" test ran on POSIX: every segment made here is checked.</summary>
    private SharedSegment OnThisBackend(SharedSegment segment)
    {
        Assert.Equal(Backend, segment.Backend);
        return segment;
    }

    /// <summary>
    /// Joins threads that work on <paramref name="mapping"/>'s memory, each with a generous timeout. If
    /// one does not end, the mapping is left mapped for the rest of the run (never disposed while a thread
    /// may still touch it: that would crash the whole test process) and the test fails.
    /// </summary>
    internal void JoinOrAbandon(IEnumerable<Thread> threads, SharedSegment mapping)
    {
        List<Thread> stuck = threads.Where(t => !t.Join(ChildProcess.DefaultWait)).ToList();
        if (stuck.Count > 0)
        {
            _disposables.Remove(mapping);
            Assert.Fail($"{stuck.Count} thread(s) did not finish within {ChildProcess.DefaultWait}; their segment stays mapped until the run ends.");
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling; fails after a generous timeout.</summary>
    protected static void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        long end = Environment.TickCount64 + (long)(timeout ?? ChildProcess.DefaultWait).TotalMilliseconds;
        var spinner = default(SpinWait);
        while (!condition())
        {
            if (Environment.TickCount64 > end)
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }

            spinner.SpinOnce(sleep1Threshold: 10);
        }
    }

    /// <summary>Reads "key=value" from a line the test host printed.</summary>
    protected static string Field(string line, string key)
    {
        foreach (string word in line.Split(' '))
        {
            if (word.StartsWith(key + "=", StringComparison.Ordinal))
            {
                return word[(key.Length + 1)..];
            }
        }

        throw new InvalidOperationException($"No '{key}' in: {line}");
    }
}
