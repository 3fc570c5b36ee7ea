namespace SharedMemChannels.TestHost;

/// <summary>
/// The test host's role for the named synchronization objects: <c>sync SEGMENT [--backend B]</c> opens
/// the segment and serves one command per stdin line, answering each with one line:
/// <c>mutex-wait NAME</c>, <c>mutex-release NAME</c>, <c>event-wait NAME</c>, <c>event-set NAME</c>,
/// <c>sem-wait NAME</c>, <c>sem-release NAME COUNT</c>, answered <c>ok</c> (with a value where there is one)
/// or <c>err TYPE</c>; <c>sem-wait-bg NAME</c> starts a wait on another thread, answers <c>started</c> at once
/// and prints <c>waited NAME ok</c> (or <c>waited NAME err TYPE</c>, <c>waited NAME timeout</c>) when it ends;
/// <c>park</c> stays until killed. Waits have a generous limit (answered
/// <c>timeout</c>) so that a broken wake-up fails a test instead of hanging it.
/// </summary>
internal static class SyncRoles
{
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(60);

    public static void Register(Dictionary<string, Role> roles) => roles.Add("sync", Serve);

    private static int Serve(Options o)
    {
        using SharedSegment segment = Program.OpenAsked(o);
        Console.WriteLine("ready");
        while (Console.ReadLine() is { } line)
        {
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
            {
                continue;
            }

            if (words[0] == "park")
            {
                Console.WriteLine("parked");
                Program.ParkUntilKilled();
            }

            string answer;
            try
            {
                answer = Run(segment, words);
            }
            catch (Exception e)
            {
                answer = $"err {e.GetType().Name}";
            }

            Console.WriteLine(answer);
        }

        return 0;
    }

    private static string Run(SharedSegment segment, string[] words)
    {
        string name = words[1];
        switch (words[0])
        {
            case "mutex-wait":
            {
                using SharedMutex mutex = SharedMutex.OpenOrCreate(segment, name);
                return mutex.Wait(s_limit) ? "ok" : "timeout";
            }

            case "mutex-release":
            {
                using SharedMutex mutex = SharedMutex.Open(segment, name);
                mutex.Release();
                return "ok";
            }

            case "event-wait":
            {
                using SharedEvent ev = SharedEvent.Open(segment, name);
                return ev.WaitAsync(s_limit).AsTask().GetAwaiter().GetResult() ? "ok" : "timeout";
            }

            case "event-set":
            {
                using SharedEvent ev = SharedEvent.Open(segment, name);
                return ev.Set() ? "ok changed" : "ok unchanged";
            }

            case "sem-wait":
            {
                using SharedSemaphore semaphore = SharedSemaphore.Open(segment, name);
                return semaphore.Wait(s_limit) ? "ok" : "timeout";
            }

            case "sem-wait-bg":
            {
                SharedSemaphore semaphore = SharedSemaphore.Open(segment, name);
                var waiter = new Thread(() =>
                {
                    string result;
                    try
                    {
                        result = semaphore.Wait(s_limit) ? "ok" : "timeout";
                    }
                    catch (Exception e)
                    {
                        result = $"err {e.GetType().Name}";
                    }

                    semaphore.Dispose();
                    Console.WriteLine($"waited {name} {result}");
                })
                { IsBackground = true };
                waiter.Start();
                return "started";
            }

            case "sem-release":
            {
                using SharedSemaphore semaphore = SharedSemaphore.Open(segment, name);
                return $"ok {semaphore.Release(int.Parse(words[2], System.Globalization.CultureInfo.InvariantCulture))}";
            }

            default:
                return $"err unknown command {words[0]}";
        }
    }
}
