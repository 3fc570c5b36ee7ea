using System.Globalization;

namespace SharedMemChannels.Samples;

/// <summary>The few command-line options the samples take ("--name X", "--count N").</summary>
internal static class SampleArgs
{
    /// <summary>The value after <paramref name="key"/>, or <paramref name="fallback"/>.</summary>
    public static string Get(string[] args, string key, string fallback)
    {
        int i = Array.IndexOf(args, key);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The number after <paramref name="key"/>, or <paramref name="fallback"/>.</summary>
    /// <exception cref="ArgumentException">It is not a positive number.</exception>
    public static int GetCount(string[] args, string key, int fallback)
    {
        string text = Get(args, key, fallback.ToString(CultureInfo.InvariantCulture));
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new ArgumentException($"{key} takes a positive number, not '{text}'.", nameof(args));
    }

    /// <summary>A segment name unique to this run, unless "--name" gives one.</summary>
    public static string SegmentName(string[] args, string sample) =>
        Get(args, "--name", string.Create(CultureInfo.InvariantCulture, $"{sample}-{Environment.ProcessId}-{Environment.TickCount64 & 0xFFFFFF:x}"));

    /// <summary>Parses an integer the other side printed.</summary>
    public static int Int(string text) => int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);

    /// <summary>Reads "key=value" from a line a role printed.</summary>
    /// <exception cref="FormatException">The line has no such field.</exception>
    public static string Field(string line, string key)
    {
        foreach (string word in line.Split(' '))
        {
            if (word.StartsWith(key + "=", StringComparison.Ordinal))
            {
                return word[(key.Length + 1)..];
            }
        }

        throw new FormatException($"No '{key}=' in: {line}");
    }
}
