using System.CommandLine;
using System.Globalization;
using System.CommandLine.Parsing;
using SharedMemChannels;

namespace Shmc;

/// <summary>
/// <c>shmc</c>: list, inspect, watch and remove SharedMemChannels segments, and run the demo. The command line
/// is System.CommandLine's (help included). Exit codes: 0 success, 1 the operation failed (no such
/// segment, not a segment, a damaged segment), 2 bad usage or a bad name; errors are one line on stderr.
/// </summary>
internal static class Program
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitUsage = 2;

    private static int Main(string[] args)
    {
        RootCommand root = BuildCommandLine();
        // A bare "shmc" is someone finding their way: show them the commands, as "shmc --help" does.
        ParseResult parsed = root.Parse(args.Length == 0 ? ["--help"] : args);
        // Help and --version clear parse errors (e.g. "inspect --help" without a name); anything else
        // that did not parse is bad usage: one line and exit 2, not the parser's help dump.
        if (parsed.Errors.Count > 0 && parsed.Action is not { ClearsParseErrors: true })
        {
            // An unknown word says more than the "required command" it also causes.
            string message = parsed.UnmatchedTokens.Count > 0
                ? $"unknown command, argument or option '{parsed.UnmatchedTokens[0]}'"
                : parsed.Errors[0].Message.TrimEnd('.');
            return Fail($"{message} (see shmc --help)", ExitUsage);
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
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

    private static RootCommand BuildCommandLine()
    {
        var json = new Option<bool>("--json") { Description = "Write JSON (the SegmentReport model of SharedMemChannels.Diagnostics) instead of tables." };

        var list = new Command("list", "Every segment of this library, POSIX and System V: backend, sizes, live processes, version, state.") { json };
        list.SetAction(result => Commands.List(result.GetValue(json)));

        Argument<string> inspectName = NameArgument();
        Option<SharedMemoryBackend?> inspectBackend = BackendOption();
        var inspect = new Command("inspect", "A segment's header, attached processes (dead ones marked), heap and named objects, read without attaching.")
        {
            inspectName, inspectBackend, json,
        };
        inspect.SetAction(result => Commands.Inspect(result.GetRequiredValue(inspectName), result.GetValue(inspectBackend), result.GetValue(json)));

        Argument<string> removeName = NameArgument();
        Option<SharedMemoryBackend?> removeBackend = BackendOption();
        var remove = new Command("remove", "Remove a segment's name; processes attached to it keep it until they detach.") { removeName, removeBackend };
        remove.SetAction(result => Commands.Remove(result.GetRequiredValue(removeName), result.GetValue(removeBackend)));

        var demoName = new Option<string>("--name") { Description = "The demo channel's name (default: demo-<pid>)." };
        demoName.Validators.Add(ValidateName);
        var demoChild = new Option<bool>("--child") { Hidden = true, Description = "Run as the demo's producer process." };
        Option<int> demoMessages = WholeNumberOption("--messages", "How many messages the producer sends at most.", Demo.DefaultMessages, 1, 100_000_000);
        Option<double> demoSeconds = NumberOption("--seconds", "How long the producer sends at most, in seconds.", Demo.DefaultSeconds, 0.01, 600);
        var demo = new Command("demo", "A producer process writes into a shared channel and this process reads with await foreach: progress, messages/s and latency percentiles; everything is removed afterwards.")
        {
            demoName, demoChild, demoMessages, demoSeconds,
        };
        demo.SetAction(result => Demo.Run(result.GetValue(demoName), result.GetValue(demoChild), result.GetValue(demoMessages), result.GetValue(demoSeconds)));

        return new RootCommand("shmc: SharedMemChannels segments, from the command line.") { list, inspect, WatchCommandLine(), remove, demo, BenchCommandLine(), BenchPeerCommandLine() };
    }

    /// <summary><c>shmc watch</c>: a segment's live traffic, sampled every interval.</summary>
    private static Command WatchCommandLine()
    {
        Argument<string> name = NameArgument();
        Option<SharedMemoryBackend?> backend = BackendOption();
        // No DefaultValueFactory: help would print the default as "00:00:01"; the description says it.
        var interval = new Option<TimeSpan?>("--interval")
        {
            Description = "How often to sample: 500ms, 2s, 1m or a number of seconds, at most 1 hour (default 1s).",
            HelpName = "duration",
            CustomParser = result =>
            {
                string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (Watch.TryParseInterval(value, out TimeSpan parsed))
                {
                    return parsed;
                }

                result.AddError($"option --interval takes a duration above 0 and at most 1 hour, such as 500ms, 2s or 1.5 (seconds), not '{value}'");
                return null;
            },
        };
        var count = new Option<int?>("--count")
        {
            Description = "Stop after this many samples (default: until Ctrl+C).",
            CustomParser = result =>
            {
                string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (int.TryParse(value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out int parsed) && parsed >= 1)
                {
                    return parsed;
                }

                result.AddError($"option --count takes a whole number from 1 up, not '{value}'");
                return null;
            },
        };
        var lines = new Option<bool>("--json") { Description = "Write each sample as one JSON object on one line (JSON Lines) instead of tables." };
        var watch = new Command("watch", "A segment's live traffic, sampled every interval: per channel written/read/dropped per second, queued and waiting; per topic messages per second and each subscriber's lag and drops; heap use; processes (dead marked).")
        {
            name, backend, interval, count, lines,
        };
        watch.SetAction(result => Watch.Run(result.GetRequiredValue(name), result.GetValue(backend), result.GetValue(interval) ?? TimeSpan.FromSeconds(1), result.GetValue(count), result.GetValue(lines)));
        return watch;
    }

    /// <summary><c>shmc bench</c>: cross-process latency and throughput, each row beside references measured in the same run.</summary>
    private static Command BenchCommandLine()
    {
        var defaults = new Bench.BenchOptions();
        Option<int> messages = WholeNumberOption("--messages", "Round trips per latency row.", defaults.Messages, 1, 100_000_000);
        Option<int> streamMessages = WholeNumberOption("--stream-messages", "Messages per streaming row.", defaults.StreamMessages, 1, 1_000_000_000);
        Option<double> seconds = NumberOption("--seconds", "At most this long per row, in seconds.", defaults.Seconds, 0.01, 600);
        string[] ids = Bench.BenchPlan.Ids;
        var only = new Option<string?>("--only")
        {
            Description = $"Only these scenarios or rows, comma-separated. Scenarios: {string.Join(", ", Bench.BenchScenario.All.Select(s => s.Id))}. Rows: {string.Join(", ", ids.Except(Bench.BenchScenario.All.Select(s => s.Id)))}.",
            HelpName = "ids",
        };
        only.Validators.Add(result =>
        {
            // An id that names nothing would make an empty report and exit 0, as if every row had passed.
            IReadOnlySet<string> given = Bench.BenchPlan.SplitIds(result.GetValueOrDefault<string?>());
            string[] unknown = [.. given.Where(id => !ids.Contains(id, StringComparer.Ordinal))];
            if (given.Count == 0 || unknown.Length > 0)
            {
                string what = given.Count == 0 ? "no id given" : $"unknown id {string.Join(", ", unknown.Select(u => $"'{u}'"))}";
                result.AddError($"option --only: {what}; the ids are {string.Join(", ", ids)}");
            }
        });
        var json = new Option<bool>("--json") { Description = "Write the run as one JSON object (tool, machine, options, scenarios with their baselines, rows with their figures, ratios and notes; docs/benchmarks.md) instead of a table." };
        var bench = new Command("bench", "Latency and throughput between processes, each row beside its references (C ring, C futex, BCL channel, naive mapped ring) measured in the same run.")
        {
            messages, streamMessages, seconds, only, json,
        };
        bench.SetAction(result => Bench.BenchCommand.Run(
            new Bench.BenchOptions
            {
                Messages = result.GetValue(messages),
                StreamMessages = result.GetValue(streamMessages),
                Seconds = result.GetValue(seconds),
                Only = Bench.BenchPlan.SplitIds(result.GetValue(only)),
                Json = result.GetValue(json),
            },
            Console.Out));
        return bench;
    }

    /// <summary>The second process of a cross-process benchmark row (started by <c>shmc bench</c> itself).</summary>
    private static Command BenchPeerCommandLine()
    {
        var peerArgs = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore };
        var peer = new Command("bench-peer", "The second process of a benchmark row.") { peerArgs };
        peer.Hidden = true;
        peer.TreatUnmatchedTokensAsErrors = false;
        peer.SetAction(result => Bench.BenchCommand.Peer([.. result.GetValue(peerArgs) ?? [], .. result.UnmatchedTokens]));
        return peer;
    }

    /// <summary>
    /// An option that takes a whole number from <paramref name="min"/> to <paramref name="max"/>. Its own
    /// parser, so that a bad value says "a whole number from 1 to 100,000", not the parser's
    /// "as expected type 'System.Int32'". The default shows once, as the parser's "[default: ...]".
    /// </summary>
    private static Option<int> WholeNumberOption(string name, string description, int defaultValue, int min, int max) => new(name)
    {
        Description = description,
        HelpName = "number",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            if (int.TryParse(value, NumberStyles.AllowLeadingSign | NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out int parsed) && parsed >= min && parsed <= max)
            {
                return parsed;
            }

            result.AddError(string.Create(CultureInfo.InvariantCulture, $"option {name} takes a whole number from {min:#,0} to {max:#,0}, not '{value}'"));
            return defaultValue;
        },
    };

    /// <summary>As <see cref="WholeNumberOption"/>, for a number that may have a fraction ("0.5").</summary>
    private static Option<double> NumberOption(string name, string description, double defaultValue, double min, double max) => new(name)
    {
        Description = description,
        HelpName = "number",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            if (double.TryParse(value, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out double parsed) && parsed >= min && parsed <= max)
            {
                return parsed;
            }

            result.AddError(string.Create(CultureInfo.InvariantCulture, $"option {name} takes a number from {min:#,0.###} to {max:#,0.###}, not '{value}'"));
            return defaultValue;
        },
    };

    private static Argument<string> NameArgument()
    {
        var name = new Argument<string>("name") { Description = "The segment's name: letters, digits, '.', '_', '-'." };
        name.Validators.Add(ValidateName);
        return name;
    }

    private static void ValidateName(SymbolResult result)
    {
        string? name = result switch
        {
            ArgumentResult argument => argument.GetValueOrDefault<string>(),
            OptionResult option => option.GetValueOrDefault<string>(),
            _ => null,
        };
        if (name is not null && !SharedName.IsValid(name))
        {
            try
            {
                SharedName.Validate(name, "name");
            }
            catch (ArgumentException e)
            {
                result.AddError(e.Message.Replace($" (Parameter '{e.ParamName}')", string.Empty, StringComparison.Ordinal));
            }
        }
    }

    private static Option<SharedMemoryBackend?> BackendOption() => new("--backend")
    {
        Description = "Look only in this backend: posix or sysv (default: POSIX, then System V).",
        HelpName = "posix|sysv",
        CustomParser = result =>
        {
            string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            switch (value)
            {
                case "posix":
                    return SharedMemoryBackend.Posix;
                case "sysv" or "systemv":
                    return SharedMemoryBackend.SystemV;
                default:
                    result.AddError($"unknown backend '{value}' (posix or sysv)");
                    return null;
            }
        },
    };
}
