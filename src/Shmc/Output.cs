using Spectre.Console;

namespace Shmc;

/// <summary>Where tables go: stdout through Spectre.Console, never wrapped when redirected to a file or pipe.</summary>
internal static class Output
{
    private static readonly Lazy<IAnsiConsole> Instance = new(() => For(System.Console.Out));

    public static IAnsiConsole Console => Instance.Value;

    /// <summary>A console like <see cref="Console"/> that writes to <paramref name="writer"/> (stdout, by another way).</summary>
    public static IAnsiConsole For(TextWriter writer)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (System.Console.IsOutputRedirected)
        {
            // A pipe has no width: without this, long names and problems would wrap at 80 columns. A width
            // asked for through COLUMNS (as ls and other tools read it) is kept.
            console.Profile.Width = RequestedWidth() ?? 1000;
        }

        return console;
    }

    /// <summary>The width in COLUMNS, when it is set to a sensible one.</summary>
    private static int? RequestedWidth() =>
        int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int columns) && columns is >= 20 and <= 1000
            ? columns
            : null;

    public static Table Table(params string[] headers)
    {
        var table = new Table { Border = TableBorder.Rounded };
        foreach (string header in headers)
        {
            table.AddColumn(new TableColumn(Text(header)));
        }

        return table;
    }

    /// <summary>Plain text: names and messages from a segment are never read as markup.</summary>
    public static Text Text(string value) => new(value);
}
