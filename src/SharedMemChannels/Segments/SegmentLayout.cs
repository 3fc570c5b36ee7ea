namespace SharedMemChannels.Segments;

/// <summary>
/// Where the parts of a segment start: all fixed for a layout version
/// (<see cref="SegmentHeader.CurrentVersion"/>). Each part's own layout is named in its descriptor:
/// <see cref="SegmentHeader"/>, <see cref="ProcessSlot"/>, <see cref="Heap.HeapControl"/>,
/// <see cref="Objects.DirectoryControl"/>.
/// </summary>
/// <remarks>
/// Version 2 moved the named-object directory's control words out of the heap control block into a
/// block of their own; nothing else moved.
/// </remarks>
internal static class SegmentLayout
{
    /// <summary>One line for words written by different parties: 128 bytes covers adjacent-line prefetch on x64 and arm64.</summary>
    public const int CacheLine = 128;

    public const int ProcessTableOffset = SegmentHeader.Size;
    public const int ProcessTableSlots = 256;
    public const int ProcessSlotSize = 64;

    public const int HeapControlOffset = ProcessTableOffset + (ProcessTableSlots * ProcessSlotSize);
    public const int HeapControlSize = 8192;

    public const int DirectoryControlOffset = HeapControlOffset + HeapControlSize;
    public const int DirectoryControlSize = 8192;

    public const int HeapStart = DirectoryControlOffset + DirectoryControlSize;
}
