using SharedMemChannels;

namespace Shmc;

/// <summary>
/// <c>shmc</c>: list, inspect and remove SharedMemChannels segments, and run the demo.
/// Exit codes: 0 success, 1 the operation failed (no such segment, not a segment), 2 bad usage.
/// </summary>
internal static class Program
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitUsage = 2;

    private const string Usage = """
        shmc: SharedMemChannels segments, from the command line.

        usage:
          shmc list [--json]                          every segment of this library (POSIX and System V)
          shmc inspect NAME [--backend posix|sysv] [--json]
                                                      header, attached processes, heap and named objects
          shmc remove NAME [--backend posix|sysv]     remove a segment's name (attached processes keep it)
          shmc demo                                   two processes share a segment and an object
          shmc bench [--json] [--messages N] [--stream-messages N] [--seconds S]
                                                      latency and throughput across processes, beside references
          shmc --help | --version
        """;

    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.Out.Write(Usage);
            return args.Length == 0 ? ExitUsage : ExitOk;
        }

        if (args[0] == "--version")
        {
            Console.WriteLine(typeof(SharedSegment).Assembly.GetName().Version?.ToString(3) ?? "unknown");
            return ExitOk;
        }

        if (args[0] is "bench" or "bench-peer")
        {
            return Bench.BenchCommand.Dispatch(args); // parses its own options (Bench/BenchOptions.cs)
        }

        CommandLine command;
        try
        {
            command = CommandLine.Parse(args[1..]);
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message, ExitUsage);
        }

        try
        {
            return args[0] switch
            {
                "list" => Commands.List(command),
                "inspect" => Commands.Inspect(command),
                "remove" => Commands.Remove(command),
                "demo" => Demo.Run(command),
                _ => Fail($"unknown command '{args[0]}' (try shmc --help)", ExitUsage),
            };
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message, ExitUsage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or TimeoutException or PlatformNotSupportedException)
        {
            return Fail(e.Message, ExitFailed);
        }
    }

    /// <summary>Prints one line to stderr and returns the exit code.</summary>
    public static int Fail(string message, int exitCode)
    {
        Console.Error.WriteLine($"shmc: {message.ReplaceLineEndings(" ")}");
        return exitCode;
    }
}

/// <summary>Positional arguments and <c>--options</c> of one command.</summary>
internal sealed class CommandLine
{
    private static readonly HashSet<string> Flags = ["json", "child"];
    private static readonly HashSet<string> Valued = ["backend", "name"];

    private readonly Dictionary<string, string> _options = [];

    public List<string> Positional { get; } = [];

    public bool Json => _options.ContainsKey("json");

    public static CommandLine Parse(string[] args)
    {
        var result = new CommandLine();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                result.Positional.Add(arg);
                continue;
            }

            string key = arg[2..];
            if (Flags.Contains(key))
            {
                result._options[key] = "true";
            }
            else if (Valued.Contains(key))
            {
                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"option --{key} needs a value");
                }

                result._options[key] = args[++i];
            }
            else
            {
                throw new ArgumentException($"unknown option '{arg}'");
            }
        }

        return result;
    }

    public bool Has(string key) => _options.ContainsKey(key);

    public string? Get(string key) => _options.GetValueOrDefault(key);

    /// <summary>The backend named by --backend, or null when not given.</summary>
    public SharedMemoryBackend? Backend => Get("backend") switch
    {
        null => null,
        "posix" => SharedMemoryBackend.Posix,
        "sysv" or "systemv" => SharedMemoryBackend.SystemV,
        string other => throw new ArgumentException($"unknown backend '{other}' (posix or sysv)"),
    };

    /// <summary>The one NAME argument, validated.</summary>
    public string SingleName(string command)
    {
        if (Positional.Count != 1)
        {
            throw new ArgumentException($"{command} takes one segment name");
        }

        SharedName.Validate(Positional[0], "name");
        return Positional[0];
    }
}
