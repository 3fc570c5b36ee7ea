using SharedMemChannels.Common;
using System.Runtime.InteropServices;
using SharedMemChannels.Objects;
using SharedMemChannels.Segments;

namespace SharedMemChannels;

/// <summary>Creates <see cref="ShmVector{T}"/> values.</summary>
public static class ShmVector
{
    /// <summary>Creates a vector in <paramref name="segment"/> holding <paramref name="items"/>.</summary>
    /// <typeparam name="T">An unmanaged element type.</typeparam>
    /// <param name="segment">The segment whose heap holds the elements.</param>
    /// <param name="items">The initial elements.</param>
    /// <exception cref="OutOfSharedMemoryException">No room for the elements.</exception>
    public static ShmVector<T> Create<T>(SharedSegment segment, ReadOnlySpan<T> items)
        where T : unmanaged
    {
        var result = default(ShmVector<T>);
        result.Reserve(segment, Math.Max(items.Length, 4));
        result.AddRange(segment, items);
        return result;
    }
}

/// <summary>
/// A growable array whose elements live in a segment's heap: an 8-byte unmanaged struct (the handle of
/// its storage), so it can be a field of a named object or of a channel element, and any process that
/// maps the segment sees the same elements. The storage records the element type's size and layout, so
/// reading a vector of one type as a vector of another is an <see cref="InvalidCastException"/>.
/// </summary>
/// <typeparam name="T">An unmanaged element type.</typeparam>
/// <remarks>
/// Call the mutating methods on the struct where it lives in shared memory (through a <c>ref</c>). Not
/// thread-safe: synchronize writers as for any shared data. The storage belongs to the segment;
/// <see cref="Free"/> returns it.
/// <para>
/// Elements may own storage themselves (<see cref="ShmString"/> and <see cref="ShmVector{T}"/> fields, up
/// to 8 levels of vectors of such elements), as a C++ vector with a scoped allocator owns its elements':
/// the vector owns what its elements own. <see cref="Free"/>, <see cref="Clear"/>, <see cref="RemoveAt"/>
/// and <see cref="Assign"/> free what the elements they remove own; adding an element hands its storage to
/// the vector (add it once). The storage records which handles its elements own, so any process, and a
/// channel carrying such vectors, frees all of it exactly once.
/// </para>
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
public struct ShmVector<T> : IEquatable<ShmVector<T>>
    where T : unmanaged
{
    private const string Kind = "ShmVector";
    private ulong _storage;

    /// <summary>The handle of the storage block, or null for an empty vector that owns nothing.</summary>
    public readonly ShmHandle Storage => ShmHandle.FromValue(_storage);

    /// <summary>Whether the vector owns no storage (a default <see cref="ShmVector{T}"/>).</summary>
    public readonly bool IsNull => _storage == 0;

    private static uint ElementTag => TypeLayout<T>.Info.Tag;

    /// <summary>The offsets of the handles each element owns (empty for plain elements).</summary>
    private static int[] Owned => TypeLayout<T>.Owned.Offsets;

    /// <summary>The number of elements.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    public readonly int GetCount(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (Open(segment, out int count, out _) == 0)
        {
            return 0;
        }

        return count;
    }

    /// <summary>How many elements fit before the storage must grow.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    public readonly int GetCapacity(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        Open(segment, out _, out int capacity);
        return capacity;
    }

    /// <summary>The elements, in shared memory (no copy). Valid until the vector grows or is freed.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    public readonly Span<T> AsSpan(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        long elements = Open(segment, out int count, out _);
        return elements == 0 ? Span<T>.Empty : ElementSpan(segment, elements, count);
    }

    /// <summary>The element at <paramref name="index"/>, in shared memory.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="index">0 to count - 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the vector.</exception>
    public readonly ref T GetRef(SharedSegment segment, int index)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        long elements = Open(segment, out int count, out _);
        if ((uint)index >= (uint)count)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), index, $"The vector has {count} elements.");
        }

        return ref segment.Memory.Ref<T>(elements + ((long)index * SegmentMemory.SizeOf<T>()));
    }

    /// <summary>Adds an element at the end.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="item">The element.</param>
    /// <exception cref="OutOfSharedMemoryException">No room to grow.</exception>
    public void Add(SharedSegment segment, in T item) => AddRange(segment, new ReadOnlySpan<T>(in item));

    /// <summary>Adds elements at the end, growing the storage by doubling when needed.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="items">The elements.</param>
    /// <exception cref="OutOfSharedMemoryException">No room to grow.</exception>
    public void AddRange(SharedSegment segment, ReadOnlySpan<T> items)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        long elements = Open(segment, out int count, out int capacity);
        long needed = (long)count + items.Length;
        if (needed > int.MaxValue)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(items), null, "The vector would hold more than int.MaxValue elements.");
        }

        if (elements == 0 || needed > capacity)
        {
            elements = Grow(segment, ContainerStorage.Grown(capacity, (int)needed, 4));
        }

        items.CopyTo(ElementSpan(segment, elements + ((long)count * SegmentMemory.SizeOf<T>()), items.Length));
        ContainerStorage.SetCount(segment.Attachment, elements, Owned.Length, (int)needed);
    }

    /// <summary>Replaces all elements with <paramref name="items"/> (freeing what the old ones own; the new ones' storage becomes the vector's).</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="items">The new elements.</param>
    public void Assign(SharedSegment segment, ReadOnlySpan<T> items)
    {
        Clear(segment);
        AddRange(segment, items);
    }

    /// <summary>Removes the element at <paramref name="index"/> (freeing what it owns), moving the later ones down.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="index">0 to count - 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the vector.</exception>
    public void RemoveAt(SharedSegment segment, int index)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        long elements = Open(segment, out int count, out _);
        if ((uint)index >= (uint)count)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), index, $"The vector has {count} elements.");
        }

        FreeOwned(segment, elements, index, 1);
        Span<T> span = ElementSpan(segment, elements, count);
        span[(index + 1)..].CopyTo(span[index..]);
        ContainerStorage.SetCount(segment.Attachment, elements, Owned.Length, count - 1);
    }

    /// <summary>Removes every element (freeing what they own) and keeps the storage.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    public void Clear(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        long elements = Open(segment, out int count, out _);
        if (elements != 0)
        {
            FreeOwned(segment, elements, 0, count);
            ContainerStorage.SetCount(segment.Attachment, elements, Owned.Length, 0);
        }
    }

    /// <summary>Makes room for at least <paramref name="capacity"/> elements.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <param name="capacity">The capacity wanted.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room to grow.</exception>
    public void Reserve(SharedSegment segment, int capacity)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        long elements = Open(segment, out _, out int current);
        if (elements == 0 || capacity > current)
        {
            Grow(segment, Math.Max(capacity, 1));
        }
    }

    /// <summary>Returns the storage to the heap, with what the elements own; the vector becomes empty.</summary>
    /// <param name="segment">The segment the vector lives in.</param>
    /// <exception cref="InvalidOperationException">The storage, or storage an element owns, was freed already.</exception>
    /// <exception cref="InvalidSegmentException">The storage (or storage below it) is damaged.</exception>
    public void Free(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (Owned.Length == 0 || _storage == 0)
        {
            ContainerStorage.Free(segment.Attachment, ref _storage);
            return;
        }

        Open(segment, out _, out _); // this vector's storage, checked as a vector of T
        ulong storage = _storage;
        _storage = 0;
        long budget = OwnedStorage.Budget(segment.Attachment);
        OwnedStorage.Free(segment.Attachment, storage, ref budget);
    }

    /// <inheritdoc />
    public readonly bool Equals(ShmVector<T> other) => _storage == other._storage;

    /// <inheritdoc />
    public override readonly bool Equals(object? obj) => obj is ShmVector<T> other && Equals(other);

    /// <inheritdoc />
    public override readonly int GetHashCode() => _storage.GetHashCode();

    /// <summary>Describes the vector's storage (the elements need the segment: <see cref="AsSpan"/>).</summary>
    public override readonly string ToString() => $"ShmVector<{typeof(T).Name}>({Storage})";

    /// <summary>Whether two values refer to the same storage.</summary>
    public static bool operator ==(ShmVector<T> left, ShmVector<T> right) => left.Equals(right);

    /// <summary>Whether two values refer to different storage.</summary>
    public static bool operator !=(ShmVector<T> left, ShmVector<T> right) => !left.Equals(right);

    /// <summary>Checks the storage; returns the offset of the first element, or 0 when there is no storage.</summary>
    private readonly long Open(SharedSegment segment, out int count, out int capacity)
    {
        ArgumentNullException.ThrowIfNull(segment);
        segment.ThrowIfDisposed();
        count = 0;
        capacity = 0;
        return _storage == 0
            ? 0
            : ContainerStorage.Open(segment.Attachment, _storage, ContainerStorage.VectorTag, SegmentMemory.SizeOf<T>(), ElementTag, Owned.Length, TypeLayout<T>.VectorNesting, Kind, out count, out capacity);
    }

    /// <summary>Frees what elements <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> - 1 own (nothing for plain elements).</summary>
    private static void FreeOwned(SharedSegment segment, long elements, int first, int count)
    {
        if (Owned.Length != 0 && count > 0)
        {
            OwnedStorage.FreeElements(segment.Attachment, elements, SegmentMemory.SizeOf<T>(), Owned, first, count);
        }
    }

    /// <summary>Moves the elements to new storage of <paramref name="capacity"/>: fill, publish the handle, free the old block.</summary>
    private long Grow(SharedSegment segment, int capacity)
    {
        long oldElements = Open(segment, out int count, out _);
        ShmHandle handle = ContainerStorage.Allocate(
            segment.Attachment, ContainerStorage.VectorTag, SegmentMemory.SizeOf<T>(), ElementTag, capacity, Kind, Owned, TypeLayout<T>.VectorNesting, out long elements);
        if (oldElements != 0)
        {
            ElementSpan(segment, oldElements, count).CopyTo(ElementSpan(segment, elements, count));
        }

        ContainerStorage.SetCount(segment.Attachment, elements, Owned.Length, count);
        ContainerStorage.Publish(segment.Attachment, ref _storage, handle);

        return elements;
    }

    private static Span<T> ElementSpan(SharedSegment segment, long offset, int count) =>
        segment.Memory.Elements<T>(offset, count);
}
