using Spectre.Console;
using Spectre.Console.Rendering;

namespace Shmc;

/// <summary>
/// A table of <c>shmc watch</c> that fits the width it is drawn in: first with its full headers, then with
/// their abbreviations, then without its least important columns, one at a time, until it fits. Headers and
/// numbers never wrap (a number broken over two lines reads as two numbers); only names and messages may.
/// </summary>
internal sealed class WatchTable
{
    /// <summary>The room a name or a message is given when deciding what fits; longer ones wrap.</summary>
    private const int TextRoom = 16;

    private readonly List<ColumnSpec> _columns = [];
    private readonly List<Cell[]> _rows = [];

    /// <summary>A column: its header, the header's abbreviation, whether it holds numbers, and how much it matters (higher stays longer; the first column always stays).</summary>
    public WatchTable Column(string header, string abbreviation, int priority, bool numbers = true)
    {
        _columns.Add(new ColumnSpec(header, abbreviation, priority, numbers));
        return this;
    }

    /// <summary>A row: one cell per column, in order.</summary>
    public WatchTable Row(params Cell[] cells)
    {
        if (cells.Length != _columns.Count)
        {
            throw new ArgumentException("one cell per column", nameof(cells));
        }

        _rows.Add(cells);
        return this;
    }

    /// <summary>The table for <paramref name="width"/> columns of text.</summary>
    public Table Render(int width)
    {
        (bool abbreviated, List<int> kept) = Fit(width);
        var table = new Table { Border = TableBorder.Rounded };
        foreach (int i in kept)
        {
            ColumnSpec c = _columns[i];
            var column = new TableColumn(new Text(abbreviated ? c.Abbreviation : c.Header));
            if (c.Numbers)
            {
                column.NoWrap().RightAligned();
            }

            table.AddColumn(column);
        }

        foreach (Cell[] row in _rows)
        {
            table.AddRow(kept.Select(i => (IRenderable)new Text(row[i].Value, row[i].Style ?? Style.Plain)));
        }

        return table;
    }

    /// <summary>The headers to use and the columns to keep, in their order.</summary>
    public (bool Abbreviated, List<int> Kept) Fit(int width)
    {
        List<int> kept = [.. Enumerable.Range(0, _columns.Count)];
        if (Width(kept, abbreviated: false) <= width)
        {
            return (false, kept);
        }

        while (Width(kept, abbreviated: true) > width && kept.Count > 2)
        {
            kept.Remove(kept.Skip(1).MinBy(i => _columns[i].Priority));
        }

        return (true, kept);
    }

    /// <summary>What the kept columns take with a rounded border: "│ a │ b │" is one plus each column's width plus three.</summary>
    private int Width(List<int> kept, bool abbreviated) =>
        1 + kept.Sum(i =>
        {
            ColumnSpec c = _columns[i];
            int widest = _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Value.Length);
            int cells = c.Numbers ? widest : Math.Min(widest, TextRoom);
            return Math.Max(abbreviated ? c.Abbreviation.Length : c.Header.Length, cells) + 3;
        });

    private sealed record ColumnSpec(string Header, string Abbreviation, int Priority, bool Numbers);

    /// <summary>A cell's text and its style (red for what went wrong).</summary>
    public readonly record struct Cell(string Value, Style? Style = null)
    {
        public static implicit operator Cell(string value) => new(value);
    }
}
