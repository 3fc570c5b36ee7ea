using System.Globalization;
using System.Security.Cryptography;
using System.Runtime.InteropServices;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// Where a channel or topic control block names its notifier (<see cref="ChannelNotifier"/>): which kind,
/// and the System V key or the POSIX id of its two semaphores. Embedded in each control block's descriptor.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct NotifierFields
{
    public const int Size = 16;

    [FieldOffset(0)] public int Kind;   // ChannelNotifier
    [FieldOffset(4)] public int Key;    // System V: the first semaphore's key (the second's is the next)
    [FieldOffset(8)] public ulong Id;   // POSIX: names the two semaphores
}

/// <summary>
/// The semaphores of channels and topics whose <see cref="ChannelNotifier"/> is not the futex: two per
/// object (a channel's readers and writers; a topic's messages and acknowledgements), made by the object's
/// initializer (identity first in the control block, then the semaphores, so that a takeover or the
/// destroyer can always find them), opened once per process and shared by every instance here, removed
/// when the object is destroyed.
/// </summary>
internal static class NotifierSemaphores
{
    /// <summary>System V keys of notifier semaphores carry this top byte (so a sweep can recognize them).</summary>
    public const int SystemVKeyPrefix = 0x5C00_0000;

    private const int SystemVKeyMask = 0x00FF_FFFE;

    /// <summary>The random part of a System V notifier key (for the tests' sweep of what a failed test left).</summary>
    internal const int SystemVKeyMaskForTests = 0x00FF_FFFF;

    private static readonly Dictionary<(int Kind, ulong Id, string Segment), Shared> s_open = [];

    /// <summary>POSIX notifier semaphores are named with this prefix, then the segment's name (<c>/dev/shm/sem.shmc.n.SEGMENT.ID.r</c>).</summary>
    public const string PosixPrefix = "/shmc.n.";

    /// <summary>The POSIX semaphore names of an object's notifier: first (a channel's readers), second (its writers).</summary>
    public static (string First, string Second) PosixNames(string segmentName, ulong id)
    {
        string stem = string.Create(CultureInfo.InvariantCulture, $"{PosixPrefix}{segmentName}.{id:x16}");
        return (stem + ".r", stem + ".w");
    }

    /// <summary>Makes the semaphores for an object being laid out (removing a dead initializer's first).</summary>
    public static void Create(string segmentName, ref NotifierFields c, ChannelNotifier notifier)
    {
        Destroy(segmentName, ref c);
        switch (notifier)
        {
            case ChannelNotifier.PosixSemaphore:
            {
                ulong id = RandomId();
                c.Id = id;
                Volatile.Write(ref c.Kind, (int)notifier);
                (string first, string second) = PosixNames(segmentName, id);
                PosixNotifierSemaphore.Create(first).Dispose();
                PosixNotifierSemaphore.Create(second).Dispose();
                break;
            }

            case ChannelNotifier.SystemVSemaphore:
            {
                for (int attempt = 0; ; attempt++)
                {
                    int key = SystemVKeyPrefix | (int)(RandomId() & SystemVKeyMask);
                    c.Key = key;
                    Volatile.Write(ref c.Kind, (int)notifier);
                    if (SystemVNotifierSemaphore.TryCreate(key) is { } first)
                    {
                        first.Dispose();
                        if (SystemVNotifierSemaphore.TryCreate(key + 1) is { } second)
                        {
                            second.Dispose();
                            break;
                        }

                        SystemVNotifierSemaphore.Remove(key);
                    }

                    if (attempt > 64)
                    {
                        throw new IOException("No free System V semaphore key for the channel's notifier after 64 attempts.");
                    }
                }

                break;
            }

            default:
                Volatile.Write(ref c.Kind, (int)ChannelNotifier.Futex);
                break;
        }
    }

    /// <summary>Removes an object's semaphores (its destroyer, or an initializer taking over).</summary>
    public static void Destroy(string segmentName, ref NotifierFields c)
    {
        switch ((ChannelNotifier)Volatile.Read(ref c.Kind))
        {
            case ChannelNotifier.PosixSemaphore:
                (string first, string second) = PosixNames(segmentName, c.Id);
                PosixNotifierSemaphore.Unlink(first);
                PosixNotifierSemaphore.Unlink(second);
                break;
            case ChannelNotifier.SystemVSemaphore when (c.Key & ~SystemVKeyMask) == SystemVKeyPrefix:
                SystemVNotifierSemaphore.Remove(c.Key);
                SystemVNotifierSemaphore.Remove(c.Key + 1);
                break;
        }
    }

    /// <summary>
    /// Puts the object's semaphores (opened once per process) on its two event counts (a channel's readers
    /// and writers); returns the hold to give back with <see cref="Release"/>, or null for the futex.
    /// </summary>
    public static object? Attach(string segmentName, in NotifierFields c, EventCount first, EventCount second)
    {
        var kind = (ChannelNotifier)c.Kind;
        if (kind == ChannelNotifier.Futex)
        {
            return null;
        }

        (int Kind, ulong Id, string Segment) key = kind switch
        {
            ChannelNotifier.PosixSemaphore => ((int)kind, c.Id, segmentName),
            ChannelNotifier.SystemVSemaphore when (c.Key & ~SystemVKeyMask) == SystemVKeyPrefix => ((int)kind, (ulong)(uint)c.Key, string.Empty),
            _ => throw new InvalidSegmentException(segmentName, $"an object has an unknown notifier {(int)kind} (key 0x{c.Key:x8})."),
        };
        Shared? shared;
        lock (s_open)
        {
            if (!s_open.TryGetValue(key, out shared))
            {
                try
                {
                    shared = Open(segmentName, kind, c);
                }
                catch (FileNotFoundException e)
                {
                    // The control block names semaphores that are not there: removed under us, or a damaged block.
                    throw new InvalidSegmentException(segmentName, $"a channel's or topic's {kind} notifier is missing ({e.Message})");
                }
                s_open.Add(key, shared);
            }

            shared.References++;
        }

        first.Notifier = shared.First;
        second.Notifier = shared.Second;
        return key;
    }

    /// <summary>Gives back a hold from <see cref="Attach"/>; the semaphores are closed with the process's last.</summary>
    public static void Release(object? hold)
    {
        if (hold is not ValueTuple<int, ulong, string> key)
        {
            return;
        }

        lock (s_open)
        {
            if (s_open.TryGetValue(key, out Shared? shared) && --shared.References == 0)
            {
                s_open.Remove(key);
                shared.First.Dispose();
                shared.Second.Dispose();
            }
        }
    }

    private static Shared Open(string segmentName, ChannelNotifier kind, in NotifierFields c)
    {
        if (kind == ChannelNotifier.PosixSemaphore)
        {
            (string first, string second) = PosixNames(segmentName, c.Id);
            PosixNotifierSemaphore r = PosixNotifierSemaphore.Open(first);
            try
            {
                return new Shared(new SemaphoreNotifier(r), new SemaphoreNotifier(PosixNotifierSemaphore.Open(second)));
            }
            catch
            {
                r.Dispose();
                throw;
            }
        }

        return new Shared(
            new SemaphoreNotifier(SystemVNotifierSemaphore.Open(c.Key)),
            new SemaphoreNotifier(SystemVNotifierSemaphore.Open(c.Key + 1)));
    }

    private static ulong RandomId()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    private sealed class Shared(SemaphoreNotifier first, SemaphoreNotifier second)
    {
        public SemaphoreNotifier First { get; } = first;

        public SemaphoreNotifier Second { get; } = second;

        public int References { get; set; }
    }
}
