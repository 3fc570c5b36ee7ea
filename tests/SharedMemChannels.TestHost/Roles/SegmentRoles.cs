using System.Globalization;
using SharedMemChannels.Segments;
using static SharedMemChannels.TestHost.Program;

namespace SharedMemChannels.TestHost;

/// <summary>Roles about a segment's life: attach and hold, race to create, stall half way, open once.</summary>
internal static class SegmentRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("hold", Hold);
        roles.Add("race", Race);
        roles.Add("create-stall", CreateStall);
        roles.Add("open", OpenOnce);
    }

    /// <summary>Opens (or creates) a segment, says so, and stays attached until stdin says "exit" or closes.</summary>
    private static int Hold(Options o)
    {
        using SharedSegment segment = o.Has("create") ? SharedSegment.OpenOrCreate(o.Name, o.SegmentOptions()) : OpenAsked(o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ready pid={Environment.ProcessId} slot={segment.Owner.Slot} created={segment.IsCreator} base={segment.BaseAddress:x} capacity={segment.Capacity}"));
        return Serve(segment);
    }

    /// <summary>Waits for "go" on stdin, then races OpenOrCreate and reports who created.</summary>
    private static int Race(Options o)
    {
        Console.WriteLine("waiting");
        if (Console.ReadLine() != "go")
        {
            return 2;
        }

        using SharedSegment segment = SharedSegment.OpenOrCreate(o.Name, o.SegmentOptions());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"result created={segment.IsCreator} creator={segment.Memory.Header.CreatorPid} pid={Environment.ProcessId}"));
        return Serve(segment);
    }

    /// <summary>Creates a segment and stops for good half way, before marking it ready: a test kills it there.</summary>
    private static int CreateStall(Options o)
    {
        SegmentTestHooks.BeforeReady = _ =>
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"initializing pid={Environment.ProcessId}"));
            ParkUntilKilled();
        };
        using SharedSegment segment = SharedSegment.Create(o.Name, o.SegmentOptions());
        return 3; // never reached
    }

    /// <summary>Opens once and reports the outcome (used to check permissions as another user).</summary>
    private static int OpenOnce(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"opened pid={Environment.ProcessId} capacity={segment.Capacity}"));
        return 0;
    }
}
