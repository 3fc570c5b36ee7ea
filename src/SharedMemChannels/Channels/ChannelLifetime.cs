using SharedMemChannels.Objects;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// The cross-process reference counting of channels (RaftLib's), and of topics alike: every process that opens a channel holds
/// a reference (a row of its endpoint table) until it disposes the channel or dies. The process whose
/// dispose drops the last reference destroys the channel itself (<see cref="ChannelCore{T}"/>'s detach);
/// this sweep is for the last holder that died: run when a process attaches to the segment and when it
/// reclaims dead processes, it destroys every channel that does not persist and whose references are all
/// dead, unless it still holds items or a completion no reader has seen (then it is retained, as after a
/// clean last dispose: see <see cref="ChannelCore{T}.DestroyIfUnreferencedLocked"/>), and every channel
/// whose creator died before it was ready. It also takes back the waiter announcements of processes that
/// died asleep on a channel (<see cref="ChannelCore{T}.TakeBackDeadWaitersLocked"/>).
/// </summary>
internal static class ChannelLifetime
{
    /// <summary>Destroys the channels and topics of <paramref name="segment"/> held only by dead processes; returns how many.</summary>
    public static int ReleaseDeadReferences(SegmentAttachment segment)
    {
        int destroyed = 0;
        foreach (NamedObjectInfo info in segment.Directory.List())
        {
            if (info.Name.StartsWith(Topics.TopicLayout.ObjectPrefix, StringComparison.Ordinal))
            {
                try
                {
                    using (segment.Directory.Lock())
                    {
                        destroyed += Topics.TopicCore.ReleaseDeadReferencesLocked(segment, info.Name) ? 1 : 0;
                    }
                }
                catch (Exception e) when (e is InvalidCastException or InvalidSegmentException)
                {
                    // Not a topic control block after all, or a damaged one: opening it reports that.
                }

                continue;
            }

            if (!info.Name.StartsWith(ChannelLayout.ObjectPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            string name = info.Name[ChannelLayout.ObjectPrefix.Length..];
            try
            {
                using (segment.Directory.Lock())
                {
                    if (!segment.Directory.TryFindLocked<ChannelControl>(info.Name, out ObjectRef found))
                    {
                        continue;
                    }

                    // Waiters that died asleep are taken off the ring's counts (their rows recorded them),
                    // so that signallers stop paying a wake-up for them.
                    ChannelCore<byte>.TakeBackDeadWaitersLocked(segment, found.ValueOffset);
                    if (HasDeadReferenceOnly(segment, found.ValueOffset) &&
                        ChannelCore<byte>.DestroyIfUnreferencedLocked(segment, name, found.Block, found.ValueOffset))
                    {
                        destroyed++;
                    }
                }
            }
            catch (Exception e) when (e is InvalidCastException or InvalidSegmentException)
            {
                // Not a channel control block after all, or a damaged one: opening it reports that.
            }
        }

        return destroyed;
    }

    /// <summary>Whether the channel has rows and all of them are dead processes' (not merely none: a crash between the steps of a clean release).</summary>
    private static bool HasDeadReferenceOnly(SegmentAttachment segment, long control)
    {
        (int live, int dead) = OwnerRows.Count(segment, control, ChannelControl.EndpointCount, ChannelLayout.EndpointOffset);
        return live == 0 && dead > 0;
    }
}
