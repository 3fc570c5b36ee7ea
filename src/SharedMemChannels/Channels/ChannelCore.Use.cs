using SharedMemChannels.Segments;

namespace SharedMemChannels.Channels;

/// <summary>
/// How a channel's operations stay clear of its disposal: the public reader and writer run each operation
/// inside a use of the segment (<see cref="SegmentAttachment.EnterUse"/>), so disposing the segment on
/// another thread waits for it before unmapping; disposing the channel itself waits the same way before it
/// gives its reference back (which may free the ring). User code called from inside an operation (the
/// item-dropped callback) runs outside the use, so that it may dispose either.
/// </summary>
internal sealed partial class ChannelCore<T>
{
    /// <summary>
    /// Starts <see cref="Detach"/>: clears the roles (an operation that starts after this sees them gone and
    /// throws <see cref="ObjectDisposedException"/>), waits for the operations other threads are in on the
    /// segment (this thread's are its own), and enters a use of the segment for the rest. False when the
    /// segment is detached already: nothing of the channel can be touched, nor needs to be given back here.
    /// </summary>
    private bool TryBeginDetach(out SegmentAttachment.Use use)
    {
        _roles = 0;
        use = default;
        if (_segment.IsDetached)
        {
            return false;
        }

        try
        {
            use = _segment.EnterUse();
        }
        catch (ObjectDisposedException)
        {
            return false;
        }

        // An operation stores its use and then reads the roles; this thread cleared the roles, and the
        // barrier makes every other thread's use visible before it is read (SegmentUse's protocol).
        Interlocked.MemoryBarrierProcessWide();
        SegmentUse.WaitUntilUnused(_segment.Id, TimeSpan.FromSeconds(10));
        return true;
    }

    /// <summary>A drop mode discarded <paramref name="dropped"/>: the user's callback sees it, then its storage is freed.</summary>
    private void OnDropped(in T dropped)
    {
        if (_itemDropped is { } callback)
        {
            // Outside the use: the callback may dispose the segment or the channel. Coming back in throws
            // ObjectDisposedException if it did, and the dropped item's storage then goes with the channel.
            SegmentAttachment.Suspended suspended = _segment.SuspendUse();
            try
            {
                callback(dropped);
            }
            finally
            {
                suspended.Dispose();
                _ownership?.Discard(in dropped);
            }

            return;
        }

        _ownership?.Discard(in dropped);
    }
}
