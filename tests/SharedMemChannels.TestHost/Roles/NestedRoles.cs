using System.Globalization;

namespace SharedMemChannels.TestHost;

/// <summary>A part of an <see cref="Assembly"/>: a string and a vector of its own (declared the same way in NestedOwnedElementTests).</summary>
internal struct Part
{
    public int Id;
    public ShmString Label;
    public ShmVector<int> Codes;
}

/// <summary>The C++ seed's "complex element" one level deeper: a string and a vector of parts that own storage themselves.</summary>
internal struct Assembly
{
    public int Id;
    public ShmString Name;
    public ShmVector<Part> Parts;
    public long Stamp;
}

/// <summary>
/// Roles for channels of elements whose vectors' elements own storage (the other process of
/// NestedOwnedElementTests): <c>nested-writer SEGMENT --channel NAME --count N</c> writes N assemblies
/// (assembly n: name "asm-n", (n % 3) + 1 parts, part k labelled "part-n-k" with codes [n, k]) with
/// WriteAsync, completes the channel and prints "done n=N"; <c>nested-hold SEGMENT --channel NAME --count N</c>
/// reads N of them, keeps them (not released), prints "holding n=N" and stays until killed.
/// </summary>
internal static class NestedRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("nested-writer", Writer);
        roles.Add("nested-hold", Hold);
    }

    /// <summary>Assembly <paramref name="n"/>, built in the segment.</summary>
    public static Assembly Build(SharedSegment segment, int n)
    {
        var assembly = new Assembly
        {
            Id = n,
            Name = ShmString.Create(segment, string.Create(CultureInfo.InvariantCulture, $"asm-{n}")),
            Stamp = n * 3L,
        };
        int parts = (n % 3) + 1;
        assembly.Parts.Reserve(segment, parts);
        for (int k = 0; k < parts; k++)
        {
            assembly.Parts.Add(segment, new Part
            {
                Id = k,
                Label = ShmString.Create(segment, string.Create(CultureInfo.InvariantCulture, $"part-{n}-{k}")),
                Codes = ShmVector.Create<int>(segment, [n, k]),
            });
        }

        return assembly;
    }

    private static int Writer(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<Assembly> channel = SharedChannel.Open<Assembly>(segment, o.Get("channel"));
        int count = o.GetInt("count", 1);
        Console.WriteLine("ready");
        for (int n = 0; n < count; n++)
        {
            channel.Writer.WriteAsync(Build(segment, n)).AsTask().GetAwaiter().GetResult();
        }

        channel.Writer.Complete();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done n={count}"));
        return 0;
    }

    private static int Hold(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        using SharedChannel<Assembly> channel = SharedChannel.Open<Assembly>(segment, o.Get("channel"));
        int count = o.GetInt("count", 1);
        for (int n = 0; n < count; n++)
        {
            _ = channel.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"holding n={count}"));
        Program.ParkUntilKilled();
        return 3;
    }
}
