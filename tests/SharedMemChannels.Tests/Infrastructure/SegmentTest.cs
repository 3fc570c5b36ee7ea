namespace SharedMemChannels.Tests.Infrastructure;

/// <summary>
/// Base of the tests that make segments or children: names it hands out and children it starts are
/// removed and killed when the test ends, whether it passed or not.
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

    /// <summary>Creates a POSIX segment with a fresh name, disposed and removed when the test ends.</summary>
    protected SharedSegment NewSegment(string tag = "seg", long capacity = 1 << 20, long max = 64 << 20) =>
        Track(SharedSegment.Create(NewName(tag), new SegmentOptions { Capacity = capacity, MaxCapacity = max }));

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
            TestRun.RemoveAll(n => n == name);
        }

        GC.SuppressFinalize(this);
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
