using System.Buffers.Binary;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Objects;

/// <summary>What a walk of nested storage does with each block (children before their parent).</summary>
internal interface IStorageVisitor
{
    /// <summary>Before the block's children: false to leave the block and everything below it alone.</summary>
    bool Enter(SegmentAttachment segment, ShmHandle block, uint tag);

    /// <summary>After the block's children.</summary>
    void Leave(SegmentAttachment segment, ShmHandle block, uint tag);
}

/// <summary>
/// The storage an element owns, all of it: the blocks of its <see cref="ShmString"/> and
/// <see cref="ShmVector{T}"/> fields and, for a vector whose elements own storage themselves, theirs, level
/// by level (each vector's storage lists what its elements own, <see cref="ContainerStorage"/>). One walk
/// serves every process and every operation that moves or frees such storage (a channel's hand-over and
/// read, <c>Release</c>, a drop, the destruction of a channel with items queued, <see cref="ShmVector{T}.Free"/>),
/// type or no type.
/// </summary>
/// <remarks>
/// Shared memory is untrusted, and the walk must end: every vector's nesting (stored) is at most
/// <see cref="ContainerStorage.MaxNesting"/> and its children's is strictly lower, so a cycle cannot be
/// followed and the recursion is at most that deep (no stack overflow); and the blocks visited for one
/// element are at most as many as the heap can hold, so storage shared between elements (which a tree
/// never has) cannot make the walk explode. Either is damage: <see cref="InvalidSegmentException"/>, or,
/// for a walk that must finish whatever it meets (a destruction), the part left alone.
/// </remarks>
internal static class OwnedStorage
{
    /// <summary>Most blocks one element's walk may visit: as many as the heap can hold (more means shared or cyclic storage).</summary>
    public static long Budget(SegmentAttachment segment) => Volatile.Read(ref segment.Memory.Header.Capacity) / BlockHeader.MinBlockSize;

    /// <summary>
    /// Walks the storage reachable from the owned handle <paramref name="handle"/> (a field's): children first,
    /// then the block. With <paramref name="tolerant"/>, a handle that is not an allocated block or a damaged
    /// vector is left alone (with what is below it) instead of thrown: for destruction, which must finish.
    /// </summary>
    /// <exception cref="ArgumentException">Not tolerant: the handle is not a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">Not tolerant: the block was freed (or the handle is stale).</exception>
    /// <exception cref="InvalidSegmentException">Not tolerant: a vector on the way is damaged, nests too deep, or storage is shared.</exception>
    public static void Walk<TVisitor>(SegmentAttachment segment, ulong handle, ref long budget, ref TVisitor visitor, bool tolerant)
        where TVisitor : struct, IStorageVisitor =>
        Walk(segment, handle, ContainerStorage.MaxNesting, ref budget, ref visitor, tolerant);

    private static void Walk<TVisitor>(SegmentAttachment segment, ulong handle, int maxNesting, ref long budget, ref TVisitor visitor, bool tolerant)
        where TVisitor : struct, IStorageVisitor
    {
        if (handle == 0)
        {
            return;
        }

        if (--budget < 0)
        {
            if (tolerant)
            {
                return;
            }

            ThrowHelper.ThrowDamaged(segment.Name, $"owned storage refers to blocks more often than the heap can hold them: storage shared between elements, or a cycle (at {ShmHandle.FromValue(handle)}).");
        }

        var block = ShmHandle.FromValue(handle);
        long payload;
        int length;
        uint tag;
        try
        {
            payload = segment.Heap.GetPayloadOffset(block, out length, out tag);
        }
        catch (Exception e) when (tolerant && e is ArgumentException or InvalidOperationException)
        {
            return; // not an allocated block: nothing to walk, nothing to free
        }

        if (!visitor.Enter(segment, block, tag))
        {
            return;
        }

        if (tag == ContainerStorage.VectorTag)
        {
            ContainerStorage.Header header = segment.Memory.Ref<ContainerStorage.Header>(payload);
            if (!ContainerStorage.Fits(header, length) || header.Nesting > maxNesting)
            {
                if (tolerant)
                {
                    return;
                }

                ThrowHelper.ThrowDamaged(segment.Name,
                    $"the vector at {block} is damaged or nests too deep: count {header.Count}, capacity {header.Capacity}, {header.OwnedCount} owned handles an element, " +
                    $"nesting {header.Nesting} where at most {maxNesting} may be (a cycle, or damage), {length} bytes of storage.");
            }

            if (header.OwnedCount > 0)
            {
                WalkElements(segment, block, payload, header, ref budget, ref visitor, tolerant);
            }
        }

        visitor.Leave(segment, block, tag);
    }

    private static void WalkElements<TVisitor>(SegmentAttachment segment, ShmHandle block, long payload, in ContainerStorage.Header header, ref long budget, ref TVisitor visitor, bool tolerant)
        where TVisitor : struct, IStorageVisitor
    {
        Span<int> offsets = stackalloc int[header.OwnedCount];
        for (int i = 0; i < offsets.Length; i++)
        {
            int offset = Volatile.Read(ref segment.Memory.Int32(ContainerStorage.TableOffset(payload) + (i * sizeof(int))));
            if ((uint)offset > (uint)(header.ElementSize - sizeof(ulong)))
            {
                if (tolerant)
                {
                    return;
                }

                ThrowHelper.ThrowDamaged(segment.Name, $"the vector at {block} lists an owned handle at {offset} in elements of {header.ElementSize} bytes.");
            }

            offsets[i] = offset;
        }

        long elements = ContainerStorage.ElementsOffset(payload, header.OwnedCount);
        for (int e = 0; e < header.Count; e++)
        {
            long element = elements + ((long)e * header.ElementSize);
            foreach (int offset in offsets)
            {
                ulong child = BinaryPrimitives.ReadUInt64LittleEndian(segment.Memory.Span(element + offset, sizeof(ulong)));
                Walk(segment, child, header.Nesting - 1, ref budget, ref visitor, tolerant);
            }
        }
    }

    /// <summary>Gives every block reachable from <paramref name="handle"/> to <paramref name="owner"/> (the segment, or this process).</summary>
    public static void SetOwnership(SegmentAttachment segment, ulong handle, ShmOwnership owner, ref long budget, bool tolerant)
    {
        var visitor = new OwnershipVisitor(owner);
        Walk(segment, handle, ref budget, ref visitor, tolerant);
    }

    /// <summary>Frees every block reachable from <paramref name="handle"/>, children before parents.</summary>
    public static void Free(SegmentAttachment segment, ulong handle, ref long budget)
    {
        var visitor = new FreeVisitor();
        Walk(segment, handle, ref budget, ref visitor, tolerant: false);
    }

    /// <summary>Frees what the elements of the vector storage at <paramref name="elements"/> (<paramref name="count"/> of them, from <paramref name="first"/>) own.</summary>
    public static void FreeElements(SegmentAttachment segment, long elements, int elementSize, ReadOnlySpan<int> offsets, int first, int count)
    {
        long budget = Budget(segment);
        for (int e = first; e < first + count; e++)
        {
            long element = elements + ((long)e * elementSize);
            foreach (int offset in offsets)
            {
                Span<byte> field = segment.Memory.Span(element + offset, sizeof(ulong));
                ulong child = BinaryPrimitives.ReadUInt64LittleEndian(field);
                if (child != 0)
                {
                    Free(segment, child, ref budget);
                    field.Clear(); // the element no longer owns it
                }
            }
        }
    }

    private readonly struct OwnershipVisitor(ShmOwnership owner) : IStorageVisitor
    {
        public bool Enter(SegmentAttachment segment, ShmHandle block, uint tag) => true;

        public void Leave(SegmentAttachment segment, ShmHandle block, uint tag) => segment.Heap.SetOwnership(block, owner);
    }

    private readonly struct FreeVisitor : IStorageVisitor
    {
        public bool Enter(SegmentAttachment segment, ShmHandle block, uint tag) => true;

        public void Leave(SegmentAttachment segment, ShmHandle block, uint tag) => segment.Heap.Free(block);
    }
}
