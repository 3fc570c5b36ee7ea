using System.Globalization;
using System.Security.Cryptography;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Channels;

/// <summary>
/// The semaphores of channels whose <see cref="ChannelNotifier"/> is not the futex: made by the channel's
/// initializer (identity first in the control block, then the semaphores, so that a takeover or the
/// destroyer can always find them), opened once per process and shared by every instance of the channel
/// here, removed when the channel is destroyed.
/// </summary>
internal static class ChannelNotifiers
{
    /// <summary>System V keys of notifier semaphores carry this top byte (so a sweep can recognize them).</summary>
    public const int SystemVKeyPrefix = 0x5C00_0000;

    private const int SystemVKeyMask = 0x00FF_FFFE;

    /// <summary>The random part of a System V notifier key (for the tests' sweep of what a failed test left).</summary>
    internal const int SystemVKeyMaskForTests = 0x00FF_FFFF;

    private static readonly Dictionary<(int Kind, ulong Id, string Segment), Shared> s_open = [];

    /// <summary>POSIX notifier semaphores are named with this prefix, then the segment's name (<c>/dev/shm/sem.shmc.n.SEGMENT.ID.r</c>).</summary>
    public const string PosixPrefix = "/shmc.n.";

    /// <summary>The POSIX semaphore names of a channel's notifier: readers, writers.</summary>
    public static (string Readers, string Writers) PosixNames(string segmentName, ulong id)
    {
        string stem = string.Create(CultureInfo.InvariantCulture, $"{PosixPrefix}{segmentName}.{id:x16}");
        return (stem + ".r", stem + ".w");
    }

    /// <summary>Makes the semaphores for a channel being laid out (removing a dead initializer's first).</summary>
    public static void Create(string segmentName, ref ChannelControl c, ChannelNotifier notifier)
    {
        Destroy(segmentName, ref c);
        switch (notifier)
        {
            case ChannelNotifier.PosixSemaphore:
            {
                ulong id = RandomId();
                c.NotifierId = id;
                Volatile.Write(ref c.NotifierKind, (int)notifier);
                (string readers, string writers) = PosixNames(segmentName, id);
                PosixNotifierSemaphore.Create(readers).Dispose();
                PosixNotifierSemaphore.Create(writers).Dispose();
                break;
            }

            case ChannelNotifier.SystemVSemaphore:
            {
                for (int attempt = 0; ; attempt++)
                {
                    int key = SystemVKeyPrefix | (int)(RandomId() & SystemVKeyMask);
                    c.NotifierKey = key;
                    Volatile.Write(ref c.NotifierKind, (int)notifier);
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
                Volatile.Write(ref c.NotifierKind, (int)ChannelNotifier.Futex);
                break;
        }
    }

    /// <summary>Removes a channel's semaphores (its destroyer, or an initializer taking over).</summary>
    public static void Destroy(string segmentName, ref ChannelControl c)
    {
        switch ((ChannelNotifier)Volatile.Read(ref c.NotifierKind))
        {
            case ChannelNotifier.PosixSemaphore:
                (string readers, string writers) = PosixNames(segmentName, c.NotifierId);
                PosixNotifierSemaphore.Unlink(readers);
                PosixNotifierSemaphore.Unlink(writers);
                break;
            case ChannelNotifier.SystemVSemaphore when (c.NotifierKey & ~SystemVKeyMask) == SystemVKeyPrefix:
                SystemVNotifierSemaphore.Remove(c.NotifierKey);
                SystemVNotifierSemaphore.Remove(c.NotifierKey + 1);
                break;
        }
    }

    /// <summary>
    /// Puts the channel's semaphores (opened once per process) on the ring's reader and writer event
    /// counts; returns the hold to give back with <see cref="Release"/>, or null for the futex.
    /// </summary>
    public static object? Attach(string segmentName, in ChannelControl c, RingHeader header)
    {
        var kind = (ChannelNotifier)c.NotifierKind;
        if (kind == ChannelNotifier.Futex)
        {
            return null;
        }

        (int Kind, ulong Id, string Segment) key = kind switch
        {
            ChannelNotifier.PosixSemaphore => ((int)kind, c.NotifierId, segmentName),
            ChannelNotifier.SystemVSemaphore when (c.NotifierKey & ~SystemVKeyMask) == SystemVKeyPrefix => ((int)kind, (ulong)(uint)c.NotifierKey, string.Empty),
            _ => throw new InvalidSegmentException(segmentName, $"a channel has an unknown notifier {(int)kind} (key 0x{c.NotifierKey:x8})."),
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
                    throw new InvalidSegmentException(segmentName, $"a channel's {kind} notifier is missing ({e.Message})");
                }
                s_open.Add(key, shared);
            }

            shared.References++;
        }

        header.ReadersEvent.Notifier = shared.Readers;
        header.WritersEvent.Notifier = shared.Writers;
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
                shared.Readers.Dispose();
                shared.Writers.Dispose();
            }
        }
    }

    private static Shared Open(string segmentName, ChannelNotifier kind, in ChannelControl c)
    {
        if (kind == ChannelNotifier.PosixSemaphore)
        {
            (string readers, string writers) = PosixNames(segmentName, c.NotifierId);
            PosixNotifierSemaphore r = PosixNotifierSemaphore.Open(readers);
            try
            {
                return new Shared(new SemaphoreNotifier(r), new SemaphoreNotifier(PosixNotifierSemaphore.Open(writers)));
            }
            catch
            {
                r.Dispose();
                throw;
            }
        }

        return new Shared(
            new SemaphoreNotifier(SystemVNotifierSemaphore.Open(c.NotifierKey)),
            new SemaphoreNotifier(SystemVNotifierSemaphore.Open(c.NotifierKey + 1)));
    }

    private static ulong RandomId()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    private sealed class Shared(SemaphoreNotifier readers, SemaphoreNotifier writers)
    {
        public SemaphoreNotifier Readers { get; } = readers;

        public SemaphoreNotifier Writers { get; } = writers;

        public int References { get; set; }
    }
}
