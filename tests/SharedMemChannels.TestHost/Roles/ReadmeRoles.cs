using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels;

namespace SharedMemChannels.TestHost;

/// <summary>The README's channel example, both sides, each as the README writes it.</summary>
internal static class ReadmeRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("readme-writer", ReadmeWriter);
        roles.Add("readme-reader", ReadmeReader);
    }

    /// <summary>
    /// <c>readme-writer NAME [--count N] [--hold]</c>: writes N ticks (1,000 by default) into the one-line
    /// channel NAME and completes it, then exits; with --hold it completes nothing: it prints "wrote n=N"
    /// and stays until killed.
    /// </summary>
    private static int ReadmeWriter(Options o)
    {
        var options = new SharedChannelOptions(capacity: 1024);
        int count = o.GetInt("count", 1_000);
        using var channel = SharedChannel.OpenOrCreateBounded<ReadmeTick>(o.Name, options);
        Console.WriteLine("ready");
        for (long i = 0; i < count; i++)
        {
            channel.Writer.WriteAsync(new ReadmeTick(i, 100 + i)).AsTask().GetAwaiter().GetResult();
        }

        if (o.Has("hold"))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote n={count}"));
            Program.ParkUntilKilled();
        }

        channel.Writer.Complete();
        return 0;
    }

    /// <summary>
    /// <c>readme-reader NAME</c>: opens the one-line channel NAME (printing "ready"), reads it with
    /// <c>await foreach</c> as the README's reader does, checks that tick n is (n, 100 + n), and prints
    /// "got n=N inorder=BOOL end=completed" (or end=TYPE for the ChannelClosedException that ended it).
    /// </summary>
    private static int ReadmeReader(Options o)
    {
        var options = new SharedChannelOptions(capacity: 1024);
        using var channel = SharedChannel.OpenOrCreateBounded<ReadmeTick>(o.Name, options);
        Console.WriteLine("ready");
        var n = new StrongBox<long>();
        var inOrder = new StrongBox<bool>(true);
        string end = "completed";
        try
        {
            ReadAll(channel.Reader, n, inOrder).GetAwaiter().GetResult();
        }
        catch (ChannelClosedException e)
        {
            end = e.GetType().Name;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"got n={n.Value} inorder={inOrder.Value} end={end}"));
        return 0;
    }

    private static async Task ReadAll(ChannelReader<ReadmeTick> reader, StrongBox<long> count, StrongBox<bool> inOrder)
    {
        await foreach (ReadmeTick tick in reader.ReadAllAsync())
        {
            inOrder.Value &= tick == new ReadmeTick(count.Value, 100 + count.Value);
            count.Value++;
        }
    }
}

/// <summary>The README's message type.</summary>
public record struct ReadmeTick(long Sequence, double Price);
