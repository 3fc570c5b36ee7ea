namespace SharedMemChannels;

/// <summary>
/// The rule for every name this library puts in a shared namespace (segments, named objects):
/// letters, digits, '.', '_' and '-', from 1 to <see cref="MaxLength"/> characters. A name can thus
/// never be a path, never reach outside the shared-memory namespace, and always fits the headers.
/// </summary>
public static class SharedName
{
    /// <summary>The longest name accepted.</summary>
    public const int MaxLength = 128;

    /// <summary>Whether <paramref name="name"/> follows the naming rule.</summary>
    /// <param name="name">The name to check.</param>
    public static bool IsValid(string? name) => name is not null && Problem(name) is null;

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="name"/> breaks the naming rule.</summary>
    /// <param name="name">The name to check.</param>
    /// <param name="paramName">The parameter it came from.</param>
    public static void Validate(string? name, string paramName)
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        string? problem = Problem(name);
        if (problem is not null)
        {
            throw new ArgumentException(
                $"Invalid name '{Printable(name)}': {problem} Names use letters, digits, '.', '_' and '-', 1 to {MaxLength} characters.",
                paramName);
        }
    }

    private static string? Problem(string name)
    {
        if (name.Length == 0)
        {
            return "it is empty.";
        }

        if (name.Length > MaxLength)
        {
            return $"it has {name.Length} characters.";
        }

        foreach (char c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-'))
            {
                return $"it contains {(c < ' ' || c == 127 ? $"the control character U+{(int)c:X4}" : $"'{c}'")}.";
            }
        }

        return null;
    }

    private static string Printable(string name)
    {
        string shown = name.Length > 40 ? string.Concat(name.AsSpan(0, 40), "…") : name;
        return shown.Replace("\0", "\\0", StringComparison.Ordinal);
    }
}
