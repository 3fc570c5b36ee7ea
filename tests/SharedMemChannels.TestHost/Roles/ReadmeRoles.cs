using SharedMemChannels;

namespace SharedMemChannels.TestHost;

/// <summary>The README's channel example, writer side: the test reads it back as the README's reader does.</summary>
internal static class ReadmeRoles
{
    public static void Register(Dictionary<string, Role> roles) => roles.Add("readme-writer", ReadmeWriter);

    /// <summary>Writes 1,000 ticks into the one-line channel NAME and completes it.</summary>
    private static int ReadmeWriter(Options o)
    {
        var options = new SharedChannelOptions(capacity: 1024);
        using var channel = SharedChannel.OpenOrCreateBounded<ReadmeTick>(o.Name, options);
        Console.WriteLine("ready");
        for (long i = 0; i < 1_000; i++)
        {
            channel.Writer.WriteAsync(new ReadmeTick(i, 100 + i)).AsTask().GetAwaiter().GetResult();
        }

        channel.Writer.Complete();
        return 0;
    }
}

/// <summary>The README's message type.</summary>
public record struct ReadmeTick(long Sequence, double Price);
