using System.Globalization;

namespace Shmc.Bench;

/// <summary>The options of <c>shmc bench</c>.</summary>
internal sealed record BenchOptions
{
    /// <summary>Round trips measured per latency row (after a warm-up that is not measured).</summary>
    public int Messages { get; init; } = 100_000;

    /// <summary>Messages per streaming row (after a warm-up that is not measured).</summary>
    public int StreamMessages { get; init; } = 5_000_000;

    /// <summary>
    /// The time cap of one row: its measurement stops after this long even if the count is not reached
    /// (the row then says how many it measured). Warm-up takes at most a fifth of it on top.
    /// </summary>
    public double Seconds { get; init; } = 2;

    /// <summary>When not empty, only the rows whose id or scenario id is in this set run.</summary>
    public IReadOnlySet<string> Only { get; init; } = new HashSet<string>();

    /// <summary>Print JSON instead of a table.</summary>
    public bool Json { get; init; }

    /// <summary>Parses the arguments that follow <c>bench</c>; a bad one is an <see cref="ArgumentException"/>.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            switch (arg)
            {
                case "--json":
                    options = options with { Json = true };
                    break;
                case "--messages":
                    options = options with { Messages = (int)Number(args, ref i, 1, 100_000_000) };
                    break;
                case "--stream-messages":
                    options = options with { StreamMessages = (int)Number(args, ref i, 1, 1_000_000_000) };
                    break;
                case "--only":
                    if (i + 1 >= args.Count)
                    {
                        throw new ArgumentException("option --only needs a value");
                    }

                    options = options with { Only = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet() };
                    break;
                case "--seconds":
                    options = options with { Seconds = Number(args, ref i, 0.01, 600) };
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{arg}' (bench takes --json, --messages N, --stream-messages N, --seconds S, --only IDS)");
            }
        }

        return options;
    }

    private static double Number(IReadOnlyList<string> args, ref int i, double min, double max)
    {
        string option = args[i];
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"option {option} needs a value");
        }

        string text = args[++i];
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value >= min && value <= max))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"option {option} takes a number from {min} to {max}, not '{text}'"));
        }

        if (min >= 1 && value != Math.Floor(value))
        {
            throw new ArgumentException($"option {option} takes a whole number, not '{text}'");
        }

        return value;
    }
}
