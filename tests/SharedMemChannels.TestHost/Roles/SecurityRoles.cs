using System.Globalization;

namespace SharedMemChannels.TestHost;

/// <summary>
/// Roles for the tests of ownership and permissions, run as another user. Arguments: NAME, then
/// <c>--backend sysv</c> for System V. Output follows the host's conventions ("key=value" words).
/// </summary>
internal static class SecurityRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("create-shared", o => CreateShared(o.Args));
        roles.Add("open-foreign", o => OpenForeign(o.Args));
        roles.Add("probe", o => Probe(o.Args));
        roles.Add("probe-every-path", o => ProbeEveryPath(o.Args));
    }

    /// <summary>
    /// Makes the segment first, readable and writable by everyone (0666), says "ready", and stays
    /// attached until stdin closes: another user's segment, planted before its victim creates the name.
    /// </summary>
    public static int CreateShared(string[] args)
    {
        SegmentOptions options = Options(args);
        options.UnixFileMode = (UnixFileMode)0x1B6; // 0666
        using SharedSegment segment = SharedSegment.OpenOrCreate(args[0], options);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ready pid={Environment.ProcessId} created={segment.IsCreator}"));
        while (Console.ReadLine() is { } line && line != "exit")
        {
        }

        return 0;
    }

    /// <summary>Opens a segment of another user, having opted in to foreign owners, and says "opened".</summary>
    public static int OpenForeign(string[] args)
    {
        SegmentOptions options = Options(args);
        options.AllowForeignOwner = true;
        using SharedSegment segment = SharedSegment.Open(args[0], options);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"opened pid={Environment.ProcessId} capacity={segment.Capacity}"));
        return 0;
    }

    /// <summary>
    /// Asks the static entry points about a name and prints what each says: "exists any=B backend=B",
    /// "open result=...", "open-backend result=...", "remove result=...". A result is True/False, "ok",
    /// or the exception's type name.
    /// </summary>
    public static int Probe(string[] args)
    {
        string name = args[0];
        SegmentOptions options = Options(args);
        Console.WriteLine($"exists any={Try(() => SharedSegment.Exists(name))} backend={Try(() => SharedSegment.Exists(name, options.Backend))}");
        Console.WriteLine($"open result={Try(() => { SharedSegment.Open(name).Dispose(); return "ok"; })}");
        Console.WriteLine($"open-backend result={Try(() => { SharedSegment.Open(name, options).Dispose(); return "ok"; })}");
        Console.WriteLine($"remove result={Try(() => SharedSegment.Remove(name, options.Backend))}");
        return 0;
    }

    /// <summary>
    /// Every entry point that looks at a POSIX name, one line each as it returns (so that a test sees which
    /// one hangs): "exists", "list", "open", "open-or-create", "create", "inspect", "inspect-posix",
    /// "diagnostics-list", "remove", each with "result=..." (True/False, "ok", a status, or the exception's
    /// type name), then "done".
    /// </summary>
    public static int ProbeEveryPath(string[] args)
    {
        string name = args[0];
        var posix = new SegmentOptions { Backend = SharedMemoryBackend.Posix, Capacity = 256 * 1024, MaxCapacity = 64 * 1024 * 1024, OpenTimeout = TimeSpan.FromSeconds(5) };
        Line("exists", () => SharedSegment.Exists(name) || SharedSegment.Exists(name, SharedMemoryBackend.Posix));
        Line("list", () => Platform.PlatformServices.GetProvider(SharedMemoryBackend.Posix).List().Contains(name));
        Line("open", () => { SharedSegment.Open(name, posix).Dispose(); return "ok"; });
        Line("open-or-create", () => { SharedSegment.OpenOrCreate(name, posix).Dispose(); return "ok"; });
        Line("create", () => { SharedSegment.Create(name, posix).Dispose(); return "ok"; });
        Line("inspect", () => Diagnostics.SegmentDiagnostics.Inspect(name).Status);
        Line("inspect-posix", () => Diagnostics.SegmentDiagnostics.Inspect(name, SharedMemoryBackend.Posix).Status);
        Line("diagnostics-list", () => Diagnostics.SegmentDiagnostics.List().Any(r => r.Name == name));
        Line("remove", () => SharedSegment.Remove(name, SharedMemoryBackend.Posix));
        Console.WriteLine("done");
        return 0;

        static void Line<T>(string what, Func<T> call) => Console.WriteLine($"{what} result={Try(call)}");
    }

    private static string Try<T>(Func<T> call)
    {
        try
        {
            return call()?.ToString() ?? "null";
        }
        catch (Exception e)
        {
            return e.GetType().Name;
        }
    }

    private static SegmentOptions Options(string[] args)
    {
        bool systemV = args.Length > 2 && args[1] == "--backend" && args[2] == "sysv";
        return new SegmentOptions
        {
            Backend = systemV ? SharedMemoryBackend.SystemV : SharedMemoryBackend.Posix,
            Capacity = 256 * 1024,
            MaxCapacity = systemV ? 256 * 1024 : 64 * 1024 * 1024,
        };
    }
}
