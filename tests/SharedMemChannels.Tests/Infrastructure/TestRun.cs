using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Tests.Infrastructure;

/// <summary>
/// Names for this test run and the cleanup of everything that carries them. Every segment a test makes
/// is named <c>t&lt;pid&gt;-&lt;tag&gt;-&lt;n&gt;</c>: at the end of the run (and when a later run finds this
/// process dead) everything with the prefix is removed from /dev/shm and System V, even after failures.
/// </summary>
internal static partial class TestRun
{
    private static int s_counter;

    public static string Prefix { get; } = string.Create(CultureInfo.InvariantCulture, $"t{Environment.ProcessId}-");

    /// <summary>A fresh segment or object name for this run.</summary>
    public static string Name(string tag) =>
        string.Create(CultureInfo.InvariantCulture, $"{Prefix}{tag}-{Interlocked.Increment(ref s_counter)}");

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries", Justification = "Test assembly: cleanup must be armed before any test runs.")]
    internal static void Arm()
    {
        RemoveLeftoversOfDeadRuns();
        long started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            RemoveAll(name => Unprefixed(name).StartsWith(Prefix, StringComparison.Ordinal));
            RemoveNotifierSemaphoresSince(started);
        };
    }

    /// <summary>
    /// System V notifier semaphores (keys 0x5Cxxxxxx) of this user made since the run started and still
    /// there at its end: a channel a failed test never destroyed. They carry no name to match, so the
    /// creation time decides (runs of the suite do not overlap on the CI machine).
    /// </summary>
    private static void RemoveNotifierSemaphoresSince(long startedUnixSeconds)
    {
        try
        {
            uint me = SharedMemChannels.Platform.Linux.LibC.GetEuid();
            foreach (string line in File.ReadLines("/proc/sysvipc/sem").Skip(1))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 10 || !int.TryParse(f[0], CultureInfo.InvariantCulture, out int key) ||
                    (key & ~SharedMemChannels.Synchronization.NotifierSemaphores.SystemVKeyMaskForTests) != SharedMemChannels.Synchronization.NotifierSemaphores.SystemVKeyPrefix ||
                    !uint.TryParse(f[6], CultureInfo.InvariantCulture, out uint creator) || creator != me ||
                    !long.TryParse(f[9], CultureInfo.InvariantCulture, out long changed) || changed < startedUnixSeconds)
                {
                    continue;
                }

                SharedMemChannels.Platform.Linux.SystemVNotifierSemaphore.Remove(key);
            }
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Removes every segment (both backends) whose name matches.</summary>
    public static void RemoveAll(Func<string, bool> match)
    {
        foreach (SharedMemoryBackend backend in Enum.GetValues<SharedMemoryBackend>())
        {
            SharedMemoryProvider provider = PlatformServices.GetProvider(backend);
            foreach (string name in provider.List().Where(match))
            {
                try
                {
                    provider.Remove(name);
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }

        // Objects of ours whose header is unreadable (garbage written by a test), and the symbolic links
        // and directories tests put under our names, are found by file name. A link is removed itself,
        // never what it points at.
        // Notifier semaphores of channels in our segments (named after the segment), left by a killed run.
        foreach (string path in Directory.EnumerateFiles("/dev/shm", "sem.shmc.n.*"))
        {
            string rest = Path.GetFileName(path)["sem.shmc.n.".Length..];
            int dot = rest.LastIndexOf('.', rest.Length - 3);
            if (dot > 0 && match(rest[..dot]))
            {
                File.Delete(path);
            }
        }

        foreach (string path in Directory.EnumerateFileSystemEntries("/dev/shm", "shmc.t*").Concat(Directory.EnumerateFileSystemEntries("/dev/shm", "shmc.ch.t*")))
        {
            string name = Path.GetFileName(path)["shmc.".Length..];
            if (!match(name))
            {
                continue;
            }

            var entry = new FileInfo(path);
            if (entry.LinkTarget is null && (entry.Attributes & FileAttributes.Directory) != 0)
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
    }

    private static void RemoveLeftoversOfDeadRuns() =>
        RemoveAll(name =>
        {
            Match m = RunPrefix().Match(Unprefixed(name));
            return m.Success && !Directory.Exists("/proc/" + m.Groups[1].Value);
        });

    /// <summary>A test's name as it was handed out: segments made for one channel carry <see cref="SharedChannel.SegmentPrefix"/> in front.</summary>
    public static string Unprefixed(string name) =>
        name.StartsWith(SharedChannel.SegmentPrefix, StringComparison.Ordinal) ? name[SharedChannel.SegmentPrefix.Length..] : name;

    [GeneratedRegex(@"^t(\d+)-")]
    private static partial Regex RunPrefix();
}
