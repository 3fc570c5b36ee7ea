using SharedMemChannels.Common;
using SharedMemChannels.Objects;

using SharedMemChannels.Segments;

namespace SharedMemChannels;

/// <summary>
/// A typed, process-local view of a block of a segment: one <typeparamref name="T"/> (an object made
/// with <c>Construct</c>) or an array of them (a plain block). It holds the segment and the block's
/// <see cref="Handle"/>; only the handle can be stored in shared memory or sent to another process.
/// </summary>
/// <typeparam name="T">An unmanaged type: no references, no pointers.</typeparam>
/// <remarks>
/// Valid until the block is freed or the segment is disposed. Reads and writes go straight to shared
/// memory: synchronize concurrent access as for any shared data.
/// </remarks>
public readonly struct ShmPtr<T> : IEquatable<ShmPtr<T>>
    where T : unmanaged
{
    private readonly SharedSegment? _segment;
    private readonly long _offset;

    /// <summary>
    /// Views a block as <typeparamref name="T"/>. An object block must have been constructed as a type of
    /// the same layout; a plain block is seen as an array of as many whole <typeparamref name="T"/> as fit.
    /// </summary>
    /// <param name="segment">The segment the block belongs to.</param>
    /// <param name="handle">The block.</param>
    /// <exception cref="ArgumentException">The handle is null or not a block of the segment, or too small for one <typeparamref name="T"/>.</exception>
    /// <exception cref="InvalidOperationException">The block was freed, or the handle is stale.</exception>
    /// <exception cref="InvalidCastException">The block is an object of another type.</exception>
    public ShmPtr(SharedSegment segment, ShmHandle handle)
    {
        ArgumentNullException.ThrowIfNull(segment);
        segment.ThrowIfDisposed();
        long payload = segment.HeapInternal.GetPayloadOffset(handle, out int length, out uint tag);
        if (tag == ObjectDirectory.ObjectBlockTag)
        {
            _offset = ObjectDirectory.ValueOffsetOf(segment.Memory, segment.HeapInternal, handle, TypeLayout<T>.Info, $"Block {handle}");
            Length = 1;
        }
        else
        {
            Length = length / SegmentMemory.SizeOf<T>();
            if (Length == 0)
            {
                throw new ArgumentException($"{handle} holds {length} bytes, too few for one {typeof(T).Name} ({SegmentMemory.SizeOf<T>()} bytes).", nameof(handle));
            }

            _offset = payload;
        }

        _segment = segment;
        Handle = handle;
    }

    internal ShmPtr(SharedSegment segment, ShmHandle handle, long offset, int length)
    {
        _segment = segment;
        Handle = handle;
        _offset = offset;
        Length = length;
    }

    /// <summary>The block, to store or send to another process.</summary>
    public ShmHandle Handle { get; }

    /// <summary>The segment, or null for the default (null) pointer.</summary>
    public SharedSegment? Segment => _segment;

    /// <summary>Whether this is the default pointer, which refers to nothing.</summary>
    public bool IsNull => _segment is null;

    /// <summary>How many <typeparamref name="T"/> the block holds: 1 for an object.</summary>
    public int Length { get; }

    /// <summary>The (first) <typeparamref name="T"/>, in shared memory.</summary>
    /// <exception cref="InvalidOperationException">The pointer is null.</exception>
    /// <exception cref="ObjectDisposedException">The segment was disposed.</exception>
    public ref T Value => ref this[0];

    /// <summary>The element at <paramref name="index"/>, in shared memory.</summary>
    /// <param name="index">0 to <see cref="Length"/> - 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the block.</exception>
    /// <exception cref="InvalidOperationException">The pointer is null.</exception>
    /// <exception cref="ObjectDisposedException">The segment was disposed.</exception>
    public ref T this[int index]
    {
        get
        {
            SharedSegment segment = Attached();
            if ((uint)index >= (uint)Length)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(index), index, $"The block holds {Length} elements.");
            }

            return ref segment.Memory.Ref<T>(_offset + ((long)index * SegmentMemory.SizeOf<T>()));
        }
    }

    /// <summary>The whole block as a span of <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidOperationException">The pointer is null.</exception>
    /// <exception cref="ObjectDisposedException">The segment was disposed.</exception>
    public Span<T> AsSpan() => Attached().Memory.Elements<T>(_offset, Length);

    /// <inheritdoc />
    public bool Equals(ShmPtr<T> other) => ReferenceEquals(_segment, other._segment) && Handle == other.Handle;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ShmPtr<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_segment, Handle);

    /// <inheritdoc />
    public override string ToString() => IsNull ? $"ShmPtr<{typeof(T).Name}>(null)" : $"ShmPtr<{typeof(T).Name}>({Handle}, {Length} in '{_segment!.Name}')";

    /// <summary>Whether two pointers refer to the same block of the same segment instance.</summary>
    public static bool operator ==(ShmPtr<T> left, ShmPtr<T> right) => left.Equals(right);

    /// <summary>Whether two pointers differ.</summary>
    public static bool operator !=(ShmPtr<T> left, ShmPtr<T> right) => !left.Equals(right);

    private SharedSegment Attached()
    {
        SharedSegment segment = _segment ?? throw new InvalidOperationException("The pointer is null.");
        segment.ThrowIfDisposed();
        return segment;
    }
}
