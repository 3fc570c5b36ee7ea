using System.Globalization;
using static SharedMemChannels.TestHost.Program;

namespace SharedMemChannels.TestHost;

/// <summary>Roles on named objects and containers: race, churn until killed, hold the directory lock, read and write the README's Config.</summary>
internal static class ObjectRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("dir-lock-hold", DirectoryLockHold);
        roles.Add("obj-race", ObjectRace);
        roles.Add("obj-churn", ObjectChurn);
        roles.Add("read-config", ReadConfig);
        roles.Add("write-config", WriteConfig);
    }

    /// <summary>Takes the named-object directory's lock and keeps it until killed.</summary>
    private static int DirectoryLockHold(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        segment.HoldDirectoryLockForTest(() =>
        {
            Console.WriteLine("locked");
            ParkUntilKilled();
        });
        return 3;
    }

    /// <summary>Waits for "go", then FindOrConstruct on a shared counter and increments it.</summary>
    private static int ObjectRace(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Console.WriteLine("waiting");
        if (Console.ReadLine() != "go")
        {
            return 2;
        }

        ShmPtr<Counter> counter = segment.FindOrConstruct(o.Get("object"), new Counter { Magic = 0xC0FFEE }, out bool created);
        int value = Interlocked.Increment(ref counter.Value.Count);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"result created={created} handle={counter.Handle.Value} magic={counter.Value.Magic} count={value}"));
        return 0;
    }

    /// <summary>Constructs and destroys named objects forever (until killed); says "running" once under way.</summary>
    private static int ObjectChurn(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        var random = new Random(o.GetInt("seed", Environment.ProcessId));
        for (long i = 0; ; i++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"k{random.Next(60)}");
            switch (random.Next(3))
            {
                case 0:
                    segment.FindOrConstruct(name, random.Next(), out _);
                    break;
                case 1:
                    segment.Destroy(name);
                    break;
                default:
                    segment.TryFind(name, out ShmPtr<int> value);
                    if (!value.IsNull)
                    {
                        value.Value++;
                    }

                    break;
            }

            if (i == 300)
            {
                Console.WriteLine("running");
            }
        }
    }

    /// <summary>Reads the README's Config object and prints it.</summary>
    private static int ReadConfig(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        if (!segment.TryFind(o.Get("object"), out ShmPtr<Config> config))
        {
            Console.WriteLine("missing");
            return 1;
        }

        ref Config c = ref config.Value;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"config version={c.Version} title={c.Title.ToString(segment).Replace(' ', '_')} gains={string.Join(',', c.Gains.AsSpan(segment).ToArray())}"));
        return 0;
    }

    /// <summary>Creates the README's Config object, then stays attached until told to exit.</summary>
    private static int WriteConfig(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        ShmPtr<Config> config = segment.FindOrConstruct<Config>(o.Get("object"));
        ref Config c = ref config.Value;
        c.Version = 7;
        c.Title.Assign(segment, "written by the child");
        c.Gains.AddRange(segment, [1.5, 2.5]);
        Console.WriteLine("written");
        return Serve(segment);
    }
}
