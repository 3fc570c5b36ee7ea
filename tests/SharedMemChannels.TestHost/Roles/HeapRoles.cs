using System.Globalization;
using static SharedMemChannels.TestHost.Program;

namespace SharedMemChannels.TestHost;

/// <summary>Roles on the shared heap: read a block, churn until killed, stress with checks, hold the heap lock.</summary>
internal static class HeapRoles
{
    public static void Register(Dictionary<string, Role> roles)
    {
        roles.Add("read", Read);
        roles.Add("alloc-loop", AllocLoop);
        roles.Add("stress", Stress);
        roles.Add("lock-hold", LockHold);
    }

    /// <summary>Opens and checks that the block HANDLE holds LENGTH bytes of BYTE.</summary>
    private static int Read(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        Span<byte> span = segment.GetSpan(ShmHandle.FromValue(ulong.Parse(o.Get("handle"), CultureInfo.InvariantCulture)));
        byte expected = byte.Parse(o.Get("byte"), CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read length={span.Length} ok={!span.ContainsAnyExcept(expected)}"));
        return 0;
    }

    /// <summary>Allocates and frees random sizes forever (until killed); says "running" once under way.</summary>
    private static int AllocLoop(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        var random = new Random(o.GetInt("seed", Environment.ProcessId));
        var held = new List<ShmHandle>();
        int threads = o.GetInt("threads", 1);
        long iterations = 0;
        bool announced = false;
        var workers = new List<Thread>();
        for (int t = 1; t < threads; t++)
        {
            int seed = random.Next();
            var worker = new Thread(() => Churn(segment, new Random(seed), [], ref iterations, long.MaxValue)) { IsBackground = true };
            worker.Start();
            workers.Add(worker);
        }

        while (true)
        {
            Churn(segment, random, held, ref iterations, 200);
            if (!announced && Interlocked.Read(ref iterations) >= 1000)
            {
                Console.WriteLine("running");
                announced = true;
            }
        }
    }

    private static void Churn(SharedSegment segment, Random random, List<ShmHandle> held, ref long iterations, long rounds)
    {
        for (long i = 0; i < rounds; i++)
        {
            if (held.Count < 64 && (held.Count == 0 || random.Next(3) != 0))
            {
                int size = random.Next(4) == 0 ? random.Next(1, 64 * 1024) : random.Next(1, 1500);
                // Process-owned only: a segment-owned block rightly outlives its allocator, and the test
                // checks that everything the dead process owned comes back.
                if (segment.TryAllocate(size, out ShmHandle handle))
                {
                    segment.GetSpan(handle)[0] = 1;
                    held.Add(handle);
                }
            }
            else
            {
                int index = random.Next(held.Count);
                segment.Free(held[index]);
                held[index] = held[^1];
                held.RemoveAt(held.Count - 1);
            }

            Interlocked.Increment(ref iterations);
        }
    }

    /// <summary>
    /// Several threads allocate and free random sizes; every block is filled with a pattern of its owner
    /// and checked before it is freed. Prints "done blocks=N errors=0" and exits 0 when all is well.
    /// </summary>
    private static int Stress(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        int threads = o.GetInt("threads", 2);
        int iterations = o.GetInt("iterations", 10000);
        int seed = o.GetInt("seed", Environment.ProcessId);
        long errors = 0;
        long blocks = 0;
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                var random = new Random(seed * 31 + id);
                var held = new List<(ShmHandle Handle, byte Pattern)>();
                for (int i = 0; i < iterations; i++)
                {
                    if (held.Count < 100 && (held.Count == 0 || random.Next(2) == 0))
                    {
                        int size = random.Next(8) == 0 ? random.Next(1, 32 * 1024) : random.Next(1, 600);
                        if (!segment.TryAllocate(size, out ShmHandle handle))
                        {
                            continue;
                        }

                        byte pattern = (byte)((Environment.ProcessId * 7) + (id * 13) + i);
                        Span<byte> span = segment.GetSpan(handle);
                        if (span.Length != size)
                        {
                            Interlocked.Increment(ref errors);
                        }

                        span.Fill(pattern);
                        held.Add((handle, pattern));
                        Interlocked.Increment(ref blocks);
                    }
                    else
                    {
                        int index = random.Next(held.Count);
                        (ShmHandle handle, byte pattern) = held[index];
                        if (segment.GetSpan(handle).ContainsAnyExcept(pattern))
                        {
                            Interlocked.Increment(ref errors);
                        }

                        segment.Free(handle);
                        held[index] = held[^1];
                        held.RemoveAt(held.Count - 1);
                    }
                }

                foreach ((ShmHandle handle, byte pattern) in held)
                {
                    if (segment.GetSpan(handle).ContainsAnyExcept(pattern))
                    {
                        Interlocked.Increment(ref errors);
                    }

                    segment.Free(handle);
                }
            });
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done blocks={blocks} errors={errors}"));
        return errors == 0 ? 0 : 1;
    }

    /// <summary>Takes the heap lock and keeps it until killed (to test lock takeover from a dead holder).</summary>
    private static int LockHold(Options o)
    {
        using SharedSegment segment = OpenAsked(o);
        segment.HeapInternal.HoldLockForTest(() =>
        {
            Console.WriteLine("locked");
            ParkUntilKilled();
        });
        return 3;
    }
}
