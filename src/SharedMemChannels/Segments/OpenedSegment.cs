using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>
/// What an opener hands over: the backing object, mapped for the segment's maximum capacity, and how
/// it came to be. The receiver owns it; if it cannot use it, it calls <see cref="Abandon"/>.
/// </summary>
internal readonly struct OpenedSegment
{
    public OpenedSegment(SharedMemoryObject backing, SegmentMemory memory, SharedMemoryBackend backend, bool created)
    {
        Backing = backing;
        Memory = memory;
        Backend = backend;
        Created = created;
    }

    /// <summary>This process's handle on the object; it holds the attachment token.</summary>
    public SharedMemoryObject Backing { get; }

    /// <summary>The mapping, header ready.</summary>
    public SegmentMemory Memory { get; }

    /// <summary>The facility the object belongs to.</summary>
    public SharedMemoryBackend Backend { get; }

    /// <summary>Whether this process created the segment.</summary>
    public bool Created { get; }

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
