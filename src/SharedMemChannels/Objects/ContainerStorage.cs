using SharedMemChannels.Common;
using System.Runtime.InteropServices;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Objects;

/// <summary>
/// The heap block behind a <see cref="ShmString"/> or <see cref="ShmVector{T}"/>: a 16-byte header
/// (count, capacity, element size, element tag) and then the elements. Every field is checked against
/// the block before it is used, so a damaged container is an exception, never a stray access.
/// </summary>
internal static class ContainerStorage
{
    public const uint StringTag = 0x5354_5231; // "STR1"
    public const uint VectorTag = 0x5645_4331; // "VEC1"
    public const int HeaderSize = 16;

    /// <summary>Reads and checks a container's storage; returns the offset of its first element.</summary>
    public static long Open(SegmentAttachment segment, ulong storage, uint blockTag, int elementSize, uint elementTag, string kind, out int count, out int capacity)
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

        if (header.Count < 0 || header.Capacity < header.Count || HeaderSize + ((long)header.Capacity * elementSize) > length)
        {
            ThrowHelper.ThrowDamaged(
                segment.Name, $"the {kind} at {ShmHandle.FromValue(storage)} is damaged: count {header.Count}, capacity {header.Capacity}, {length} bytes of storage.");
        }

        count = header.Count;
        capacity = header.Capacity;
        return payload + HeaderSize;
    }

    /// <summary>Allocates storage for <paramref name="capacity"/> elements, owned by the segment.</summary>
    public static ShmHandle Allocate(SegmentAttachment segment, uint blockTag, int elementSize, uint elementTag, int capacity, string kind, out long elements)
    {
        long bytes = HeaderSize + ((long)capacity * elementSize);
        if (bytes > SharedSegment.MaxAllocationSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), capacity, $"A {kind} of {capacity} elements would exceed the largest allocation ({SharedSegment.MaxAllocationSize} bytes).");
        }

        SharedHeap heap = segment.Heap;
        if (!heap.TryAllocate((int)bytes, ShmOwnership.Segment, blockTag, out ShmHandle handle))
        {
            ThrowHelper.ThrowOutOfMemory($"Out of shared memory: {bytes} bytes for a {kind} in segment '{segment.Name}'.");
        }

        long payload = heap.GetPayloadOffset(handle, out _, out _);
        segment.Memory.Ref<Header>(payload) = new Header { Count = 0, Capacity = capacity, ElementSize = elementSize, ElementTag = elementTag };
        elements = payload + HeaderSize;
        return handle;
    }

    /// <summary>Sets the element count of checked storage.</summary>
    public static void SetCount(SegmentAttachment segment, long elements, int count) =>
        Volatile.Write(ref segment.Memory.Ref<Header>(elements - HeaderSize).Count, count);

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

    /// <summary>The container block's header: the only description of its layout.</summary>
    [StructLayout(LayoutKind.Explicit, Size = HeaderSize)]
    internal struct Header
    {
        [FieldOffset(0)] public int Count;
        [FieldOffset(4)] public int Capacity;
        [FieldOffset(8)] public int ElementSize;
        [FieldOffset(12)] public uint ElementTag;
    }
}
