using System.Globalization;

namespace SharedMemChannels.TestHost;

/// <summary>Roles that damage a segment on purpose and check that every operation fails only as documented.</summary>
internal static class FuzzRoles
{
    public static void Register(Dictionary<string, Role> roles) => roles.Add("corrupt-fuzz", CorruptFuzz);

    /// <summary>
    /// Fills a segment (of the backend --backend names) with blocks, named objects and containers, overwrites random bytes of its heap and
    /// directory, then runs every operation on it. Each must either work or throw one of the exceptions
    /// the API documents; anything else (or a crash of this process) is a failure the test sees.
    /// </summary>
    private static int CorruptFuzz(Options o)
    {
        int seed = o.GetInt("seed", 1);
        int rounds = o.GetInt("rounds", 50);
        var random = new Random(seed);
        int outcomes = 0;

        // The damage lands in the first 256 KiB either way; System V cannot grow, so its segment is that size.
        var options = new SegmentOptions
        {
            Backend = o.Backend,
            Capacity = 256 * 1024,
            MaxCapacity = o.Backend == SharedMemoryBackend.SystemV ? 256 * 1024 : 4 * 1024 * 1024,
        };
        for (int round = 0; round < rounds; round++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"{o.Name}-{round}");
            using (SharedSegment segment = SharedSegment.Create(name, options))
            {
                try
                {
                    var handles = new List<ShmHandle>();
                    for (int i = 0; i < 40; i++)
                    {
                        handles.Add(segment.Allocate(random.Next(1, 3000)));
                    }

                    for (int i = 0; i < 10; i++)
                    {
                        ShmPtr<Config> config = segment.Construct<Config>(string.Create(CultureInfo.InvariantCulture, $"obj{i}"));
                        config.Value.Title.Assign(segment, "some text");
                        config.Value.Gains.AddRange(segment, [1.0, 2.0, 3.0]);
                    }

                    handles.RemoveAll(h =>
                    {
                        bool free = random.Next(3) == 0;
                        if (free)
                        {
                            segment.Free(h);
                        }

                        return free;
                    });

                    // The damage: random bytes anywhere from the heap control block to the end.
                    long start = Segments.SegmentLayout.HeapControlOffset + 512; // past the lock words: a peer that holds the lock forever is a different failure
                    for (int k = 0, n = random.Next(1, 24); k < n; k++)
                    {
                        long at = start + (long)(random.NextDouble() * (segment.Capacity - start - 8));
                        segment.Memory.Span(at, 1)[0] = (byte)random.Next(256);
                    }

                    foreach (Action operation in Operations(segment, handles, random))
                    {
                        try
                        {
                            operation();
                        }
                        catch (Exception e) when (e is InvalidSegmentException or ArgumentException or InvalidOperationException or InvalidCastException or OutOfSharedMemoryException)
                        {
                            outcomes++;
                        }
                    }
                }
                finally
                {
                    SharedSegment.Remove(name);
                }
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fuzz ok rounds={rounds} exceptions={outcomes}"));
        return 0;
    }

    private static IEnumerable<Action> Operations(SharedSegment segment, List<ShmHandle> handles, Random random)
    {
        foreach (ShmHandle handle in handles)
        {
            yield return () => segment.GetSpan(handle).Fill(1);
        }

        for (int i = 0; i < 10; i++)
        {
            string name = string.Create(CultureInfo.InvariantCulture, $"obj{i}");
            yield return () =>
            {
                if (segment.TryFind(name, out ShmPtr<Config> config))
                {
                    _ = config.Value.Title.ToString(segment);
                    _ = config.Value.Gains.AsSpan(segment).ToArray();
                    config.Value.Gains.Add(segment, 4.0);
                }
            };
        }

        for (int i = 0; i < 30; i++)
        {
            int size = random.Next(1, 5000);
            yield return () => segment.Free(segment.Allocate(size));
        }

        foreach (ShmHandle handle in handles)
        {
            yield return () => segment.Free(handle);
        }

        yield return () => segment.GetHeapStatistics();
        yield return () => segment.GetNamedObjects();
        yield return () => segment.ValidateHeap();
        yield return () => segment.Destroy("obj3");
        yield return () => segment.Construct<Config>("fresh");
        yield return () => segment.ReclaimDeadProcesses();
    }
}
