using System.Globalization;
using SharedMemChannels;

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

/// <summary>One subcommand of the test host: runs with the parsed arguments, returns the exit code.</summary>
internal delegate int Role(Options options);

/// <summary>
/// The child process of the cross-process tests: one subcommand per role. Every role prints one line
/// when it has reached the state the test waits for, so that the test never sleeps to synchronize.
/// Output lines are "key=value" words; errors are "error Type message" and exit code 1.
/// </summary>
/// <remarks>
/// Roles live in one file per group under Roles/; each group registers its names in <see cref="Roles"/>.
/// A new group is one more line there.
/// </remarks>
internal static class Program
{
    /// <summary>Role name to role, from every group. A name registered twice fails at start, not at random.</summary>
    private static readonly Dictionary<string, Role> Roles = Register(
        SegmentRoles.Register,
        HeapRoles.Register,
        ObjectRoles.Register,
        FuzzRoles.Register,
        SecurityRoles.Register,
        ReadmeRoles.Register,
        RingRoles.Register,
        ChannelRoles.Register,
        SyncRoles.Register,
        UnboundedRoles.Register,
        PriorityRoles.Register,
        RecordRoles.Register,
        SerializedRoles.Register,
        TopicRoles.Register,
        TopicStreamRoles.Register,
        DisposeRoles.Register,
        NestedRoles.Register,
        FieldDamageRoles.Register);

    /// <summary>
    /// Ends this child when the test process that started it is gone (it was killed, or crashed): a
    /// child that loops for ever must never outlive its test run and keep a core busy.
    /// </summary>
    private static void WatchParent()
    {
        int parent = ParentPid();
        if (parent <= 1)
        {
            return;
        }

        System.Diagnostics.Process watched;
        try
        {
            watched = System.Diagnostics.Process.GetProcessById(parent);
        }
        catch (ArgumentException)
        {
            Environment.Exit(99); // gone already
            return;
        }

        var watcher = new Thread(() =>
        {
            watched.WaitForExit();
            Environment.Exit(99);
        })
        { IsBackground = true, Name = "parent watcher" };
        watcher.Start();
    }

    /// <summary>This process's parent, from /proc/self/stat (the field after the parenthesized name and the state).</summary>
    private static int ParentPid()
    {
        try
        {
            string stat = File.ReadAllText("/proc/self/stat");
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(rest[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: TestHost <role> <args...>");
            return 2;
        }

        if (!Roles.TryGetValue(args[0], out Role? role))
        {
            Console.Error.WriteLine($"unknown role '{args[0]}'");
            return 2;
        }

        WatchParent();
        try
        {
            return role(new Options(args[1..]));
        }
        catch (Exception e)
        {
            WriteError(e);
            return 1;
        }
    }

    private static Dictionary<string, Role> Register(params Action<Dictionary<string, Role>>[] groups)
    {
        var roles = new Dictionary<string, Role>(StringComparer.Ordinal);
        foreach (Action<Dictionary<string, Role>> group in groups)
        {
            group(roles); // Dictionary.Add: a duplicate name throws
        }

        return roles;
    }

    /// <summary>Prints an exception as the "error Type message" line the tests look for.</summary>
    internal static void WriteError(Exception e) =>
        Console.WriteLine($"error {e.GetType().Name} {e.Message.ReplaceLineEndings(" ")}");

    /// <summary>Opens the segment named in the arguments, of the backend they name (--backend), or either.</summary>
    internal static SharedSegment OpenAsked(Options o) =>
        o.Has("backend") ? SharedSegment.Open(o.Name, o.SegmentOptions()) : SharedSegment.Open(o.Name);

    /// <summary>Commands a held segment understands on stdin, one per line, until "exit" or the end of stdin.</summary>
    internal static int Serve(SharedSegment segment)
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
                WriteError(e);
            }
        }

        return 0;
    }

    /// <summary>Stops this thread for good: the test kills the process here.</summary>
    internal static void ParkUntilKilled()
    {
        using var never = new ManualResetEventSlim();
        never.Wait();
    }
}

/// <summary>"NAME --key value --flag" arguments.</summary>
internal sealed class Options
{
    private readonly Dictionary<string, string> _values = [];

    /// <summary>The arguments as given, after the role name.</summary>
    public string[] Args { get; }

    public Options(string[] args)
    {
        Args = args;
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

    /// <summary>The options the arguments describe: --backend posix|sysv, --capacity, --max, --timeout-ms, --remove-on-last-detach.</summary>
    public SegmentOptions SegmentOptions()
    {
        var options = new SegmentOptions
        {
            Backend = Backend,
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

    /// <summary>The backend --backend names ("sysv" or "posix"); POSIX when absent.</summary>
    public SharedMemoryBackend Backend => _values.GetValueOrDefault("backend") switch
    {
        null or "posix" => SharedMemoryBackend.Posix,
        "sysv" => SharedMemoryBackend.SystemV,
        string other => throw new ArgumentException($"unknown --backend '{other}' (posix or sysv)"),
    };
}
