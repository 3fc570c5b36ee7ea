using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>
/// What an opener hands over: the backing object, mapped for the segment's maximum capacity, and how
/// it came to be. The receiver owns it; if it cannot use it, it calls <see cref="Abandon"/>.
/// </summary>
/// <param name="Backing">This process's handle on the object; it holds the attachment token.</param>
/// <param name="Memory">The mapping, header ready.</param>
/// <param name="Backend">The facility the object belongs to.</param>
/// <param name="Created">Whether this process created the segment.</param>
internal readonly record struct OpenedSegment(SharedMemoryObject Backing, SegmentMemory Memory, SharedMemoryBackend Backend, bool Created)
{
    /// <summary>
    /// Gives the object up when the receiver failed to attach: a segment this process just created is
    /// removed again (nobody else can be using it yet in a way that matters more than a clean failure).
    /// </summary>
    public void Abandon()
    {
        try
        {
            if (Created && Backing.IsCurrent())
            {
                Backing.RemoveName();
            }
        }
        finally
        {
            Backing.Dispose();
        }
    }
}
