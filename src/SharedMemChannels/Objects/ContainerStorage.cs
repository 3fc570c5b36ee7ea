using SharedMemChannels.Common;
using System.Runtime.InteropServices;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Objects;

/// <summary>
/// The heap block behind a <see cref="ShmString"/> or <see cref="ShmVector{T}"/>: a 32-byte header
/// (count, capacity, element size, element tag, owned-handle count, nesting), the table of the offsets
/// of the handles each element owns (a vector of elements with <see cref="ShmString"/> /
/// <see cref="ShmVector{T}"/> fields), and then the elements. The table makes the storage describe
/// itself: any process, knowing no type, can free a vector with what its elements own
/// (<see cref="OwnedStorage"/>). Every field is checked against the block before it is used, so a
/// damaged container is an exception, never a stray access.
/// </summary>
internal static class ContainerStorage
{
    public const uint StringTag = 0x5354_5231; // "STR1"
    public const uint VectorTag = 0x5645_4331; // "VEC1"
    public const int HeaderSize = 32;

    /// <summary>The most handles one element of a vector may own (the table's bound).</summary>
    public const int MaxOwnedPerElement = 64;

    /// <summary>
    /// The most levels of vectors whose elements own storage, one inside the other (a vector of elements
    /// holding vectors of elements holding strings is 2): the bound every walk of nested storage keeps.
    /// </summary>
    public const int MaxNesting = 8;

    /// <summary>Bytes of the owned-handle table of <paramref name="ownedCount"/> entries (16-byte aligned).</summary>
    public static int TableBytes(int ownedCount) => ((ownedCount * sizeof(int)) + 15) & ~15;

    /// <summary>Where the owned-handle table starts, from the block's payload.</summary>
    public static long TableOffset(long payload) => payload + HeaderSize;

    /// <summary>Where the elements start, from the block's payload.</summary>
    public static long ElementsOffset(long payload, int ownedCount) => payload + HeaderSize + TableBytes(ownedCount);

    /// <summary>Reads and checks the storage of a container whose elements own nothing (a string's); returns the offset of its first element.</summary>
    public static long Open(SegmentAttachment segment, ulong storage, uint blockTag, int elementSize, uint elementTag, string kind, out int count, out int capacity) =>
        Open(segment, storage, blockTag, elementSize, elementTag, 0, 0, kind, out count, out capacity);

    /// <summary>Reads and checks a container's storage; returns the offset of its first element.</summary>
    /// <param name="segment">The attachment.</param>
    /// <param name="storage">The storage handle (untrusted).</param>
    /// <param name="blockTag">The container kind's block tag.</param>
    /// <param name="elementSize">The element type's size.</param>
    /// <param name="elementTag">The element type's layout tag.</param>
    /// <param name="ownedCount">The handles each element of the type owns (the table must say as much).</param>
    /// <param name="nesting">The type's nesting (the header must say as much).</param>
    /// <param name="kind">The container's name, for messages.</param>
    /// <param name="count">The element count.</param>
    /// <param name="capacity">The element capacity.</param>
    public static long Open(SegmentAttachment segment, ulong storage, uint blockTag, int elementSize, uint elementTag, int ownedCount, int nesting, string kind, out int count, out int capacity)
    {
        SharedHeap heap = segment.Heap;
        long payload = heap.GetPayloadOffset(ShmHandle.FromValue(storage), out int length, out uint tag);
        if (tag != blockTag)
        {
            ThrowHelper.ThrowDamaged(segment.Name, $"{ShmHandle.FromValue(storage)} is not the storage of a {kind}.");
        }

        Header header = segment.Memory.Ref<Header>(payload);
        if (header.ElementSize != elementSize || header.ElementTag != elementTag)
        {
            ThrowHelper.ThrowInvalidCast(
                $"The {kind} holds elements of {header.ElementSize} bytes (layout tag {header.ElementTag:x8}), not {elementSize} bytes (layout tag {elementTag:x8}).");
        }

        if (header.OwnedCount != ownedCount || header.Nesting != nesting || !Fits(header, length))
        {
            ThrowHelper.ThrowDamaged(
                segment.Name,
                $"the {kind} at {ShmHandle.FromValue(storage)} is damaged: count {header.Count}, capacity {header.Capacity}, {header.OwnedCount} owned handles an element " +
                $"(the type has {ownedCount}), nesting {header.Nesting} (the type's is {nesting}), {length} bytes of storage.");
        }

        count = header.Count;
        capacity = header.Capacity;
        return ElementsOffset(payload, header.OwnedCount);
    }

    /// <summary>Whether a header (read from shared memory) is consistent and its table and elements fit a block of <paramref name="length"/> bytes.</summary>
    public static bool Fits(in Header header, int length) =>
        header.Count >= 0 && header.Capacity >= header.Count && header.ElementSize > 0 &&
        (uint)header.OwnedCount <= MaxOwnedPerElement && (uint)header.Nesting <= MaxNesting && (header.OwnedCount == 0) == (header.Nesting == 0) &&
        (header.OwnedCount == 0 || header.ElementSize >= sizeof(ulong)) &&
        HeaderSize + TableBytes(header.OwnedCount) + ((long)header.Capacity * header.ElementSize) <= length;

    /// <summary>Allocates storage for <paramref name="capacity"/> elements, owned by the segment.</summary>
    public static ShmHandle Allocate(SegmentAttachment segment, uint blockTag, int elementSize, uint elementTag, int capacity, string kind, out long elements) =>
        Allocate(segment, blockTag, elementSize, elementTag, capacity, kind, [], 0, out elements);

    /// <summary>
    /// Allocates storage for <paramref name="capacity"/> elements, owned by the segment, whose elements own
    /// the handles at <paramref name="ownedOffsets"/> (the table written after the header) at
    /// <paramref name="nesting"/> levels.
    /// </summary>
    public static ShmHandle Allocate(SegmentAttachment segment, uint blockTag, int elementSize, uint elementTag, int capacity, string kind, ReadOnlySpan<int> ownedOffsets, int nesting, out long elements)
    {
        long bytes = HeaderSize + TableBytes(ownedOffsets.Length) + ((long)capacity * elementSize);
        if (bytes > SharedSegment.MaxAllocationSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), capacity, $"A {kind} of {capacity} elements would exceed the largest allocation ({SharedSegment.MaxAllocationSize} bytes).");
        }

        SharedHeap heap = segment.Heap;
        if (!heap.TryAllocate((int)bytes, ShmOwnership.Segment, blockTag, out ShmHandle handle))
        {
            ThrowHelper.ThrowOutOfMemory($"Out of shared memory: {bytes} bytes for a {kind} in segment '{segment.Name}'.{segment.DescribeMemoryLimit()}");
        }

        long payload = heap.GetPayloadOffset(handle, out _, out _);
        segment.Memory.Ref<Header>(payload) = new Header
        {
            Count = 0,
            Capacity = capacity,
            ElementSize = elementSize,
            ElementTag = elementTag,
            OwnedCount = ownedOffsets.Length,
            Nesting = nesting,
        };
        for (int i = 0; i < ownedOffsets.Length; i++)
        {
            segment.Memory.Int32(TableOffset(payload) + (i * sizeof(int))) = ownedOffsets[i];
        }

        elements = ElementsOffset(payload, ownedOffsets.Length);
        return handle;
    }

    /// <summary>Sets the element count of checked storage whose elements own nothing (a string's).</summary>
    public static void SetCount(SegmentAttachment segment, long elements, int count) => SetCount(segment, elements, 0, count);

    /// <summary>Sets the element count of checked storage whose elements own <paramref name="ownedCount"/> handles each (the table lies between the header and the elements).</summary>
    public static void SetCount(SegmentAttachment segment, long elements, int ownedCount, int count) =>
        Volatile.Write(ref segment.Memory.Ref<Header>(elements - HeaderSize - TableBytes(ownedCount)).Count, count);

    /// <summary>Returns a container's storage to the heap and empties the container's handle first.</summary>
    public static void Free(SegmentAttachment segment, ref ulong storage)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (storage != 0)
        {
            ulong handle = storage;
            storage = 0;
            segment.Heap.Free(ShmHandle.FromValue(handle));
        }
    }

    /// <summary>Moves a container to new storage: publishes <paramref name="replacement"/> in its handle, then frees the old block.</summary>
    public static void Publish(SegmentAttachment segment, ref ulong storage, ShmHandle replacement)
    {
        ulong old = storage;
        storage = replacement.Value;
        if (old != 0)
        {
            segment.Heap.Free(ShmHandle.FromValue(old));
        }
    }

    /// <summary>The capacity to grow to: doubling, at least <paramref name="needed"/>.</summary>
    public static int Grown(int capacity, int needed, int minimum) => (int)Math.Min(int.MaxValue, Math.Max(needed, Math.Max(minimum, capacity * 2L)));

    /// <summary>The container block's header: the only description of its layout (bytes 24 to 31 are reserved, zero).</summary>
    [StructLayout(LayoutKind.Explicit, Size = HeaderSize)]
    internal struct Header
    {
        [FieldOffset(0)] public int Count;
        [FieldOffset(4)] public int Capacity;
        [FieldOffset(8)] public int ElementSize;
        [FieldOffset(12)] public uint ElementTag;

        /// <summary>The handles each element owns, listed in the table after the header (0 for strings and vectors of plain elements).</summary>
        [FieldOffset(16)] public int OwnedCount;

        /// <summary>Levels of containers below this one's elements that own storage themselves (0 when the elements own nothing).</summary>
        [FieldOffset(20)] public int Nesting;
    }
}
