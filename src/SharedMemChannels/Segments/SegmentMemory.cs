using SharedMemChannels.Common;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>
/// This process's view of a segment's bytes, and the only way to turn an offset into memory. Every
/// offset and length is checked against what is mapped; an offset beyond the mapping is first taken
/// as a sign that a peer grew the segment (the new part is mapped if the header and the backing
/// object both say it exists), and otherwise is an <see cref="InvalidSegmentException"/>.
/// </summary>
/// <remarks>
/// The base address never changes while the segment is attached: the whole maximum capacity was
/// reserved as address space up front and growth maps into that reservation. Spans and references
/// handed out are valid until the segment is disposed.
/// </remarks>
internal sealed unsafe class SegmentMemory
{
    private readonly SharedMemoryObject _object;
    private readonly byte* _base;
    private readonly long _maxCapacity;
    private readonly Lock _mapLock = new();
    private long _mapped;

    public SegmentMemory(SharedMemoryObject backing, long maxCapacity)
    {
        _object = backing;
        _base = (byte*)backing.BaseAddress;
        _maxCapacity = maxCapacity;
        _mapped = backing.MappedLength;
    }

    /// <summary>The segment's name, for messages.</summary>
    public string Name => _object.Name;

    /// <summary>Where the segment starts in this process. Stable for the life of the attachment.</summary>
    public nint BaseAddress => (nint)_base;

    /// <summary>
    /// Set (under the waiter's lock) when the attachment is detaching and its pending asynchronous waits were
    /// failed: no wait on a word of this mapping may be registered after that, for the words go away next.
    /// </summary>
    public bool IsClosed { get; set; }

    /// <summary>How many bytes this process has mapped.</summary>
    public long MappedLength => Volatile.Read(ref _mapped);

    /// <summary>The growth limit this process reserved address space for.</summary>
    public long MaxCapacity => _maxCapacity;

    /// <summary>The header, always mapped.</summary>
    public ref SegmentHeader Header => ref Unsafe.AsRef<SegmentHeader>(_base);

    /// <summary>Bytes [offset, offset + length) of the segment.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Span(long offset, int length)
    {
        Check(offset, length);
        return new Span<byte>(_base + offset, length);
    }

    /// <summary>
    /// A pin of byte <paramref name="offset"/> of the segment (already fixed in memory: nothing to undo), for a
    /// <see cref="System.Buffers.MemoryManager{T}"/> over a range of the segment (a serialized channel's records).
    /// </summary>
    public System.Buffers.MemoryHandle Pin(long offset, int length)
    {
        Check(offset, length);
        return new System.Buffers.MemoryHandle(_base + offset);
    }

    /// <summary>A reference to a <typeparamref name="T"/> at <paramref name="offset"/>, which must be aligned as T's fields need.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref T Ref<T>(long offset)
        where T : unmanaged
    {
        Check(offset, sizeof(T));
        // The natural alignment of T's largest power-of-two factor, at most 8: what its fields need.
        if ((offset & (Math.Min(sizeof(T) & -sizeof(T), 8) - 1)) != 0)
        {
            ThrowMisaligned(offset, typeof(T));
        }

        return ref Unsafe.AsRef<T>(_base + offset);
    }

    /// <summary>
    /// <paramref name="count"/> values of <typeparamref name="T"/> starting at <paramref name="offset"/>,
    /// which must be aligned as T's fields need.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> Elements<T>(long offset, int count)
        where T : unmanaged
    {
        long bytes = (long)count * sizeof(T);
        if ((ulong)bytes > int.MaxValue)
        {
            ThrowOutOfBounds(offset + bytes, _maxCapacity);
        }

        Check(offset, (int)bytes);
        if ((offset & (Math.Min(sizeof(T) & -sizeof(T), 8) - 1)) != 0)
        {
            ThrowMisaligned(offset, typeof(T));
        }

        return new Span<T>(_base + offset, count);
    }

    /// <summary>The size of <typeparamref name="T"/> as it lies in shared memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SizeOf<T>()
        where T : unmanaged => sizeof(T);

    /// <summary>
    /// The 64-bit word at byte <paramref name="offset"/> of a local value (an element on its way in or out
    /// of a ring): how the owned heap handles of an element of any type are read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadUInt64<T>(in T value, int offset)
        where T : unmanaged
    {
        if ((uint)offset > (uint)(sizeof(T) - sizeof(ulong)))
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"A 64-bit word at {offset} does not fit in {typeof(T)} ({sizeof(T)} bytes).");
        }

        return Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref Unsafe.As<T, byte>(ref Unsafe.AsRef(in value)), offset));
    }

    /// <summary>A 32-bit shared word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int Int32(long offset) => ref Ref<int>(offset);

    /// <summary>A 64-bit shared word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long Int64(long offset) => ref Ref<long>(offset);

    /// <summary>
    /// The address of a 32-bit word that never moves (a word of a mapping, or an element of a pinned
    /// array), for the kernel calls that take addresses (<c>futex_waitv</c> through
    /// <see cref="WaitTarget"/>). A reference to a movable object's field would give a stale address.
    /// </summary>
    public static nint AddressOf(ref int word) => (nint)Unsafe.AsPointer(ref word);

    /// <summary>
    /// Makes sure bytes up to <paramref name="end"/> are mapped, mapping what a peer grew. Throws when
    /// the segment does not reach that far.
    /// </summary>
    public void EnsureMapped(long end)
    {
        if (end <= Volatile.Read(ref _mapped))
        {
            return;
        }

        lock (_mapLock)
        {
            if (end <= _mapped)
            {
                return;
            }

            // The capacity word is written by peers: check it against our reservation and against the
            // object's real size before mapping, or a lying header would make us fault on access.
            long capacity = Volatile.Read(ref Header.Capacity);
            if (end > capacity || capacity > _maxCapacity || capacity % Environment.SystemPageSize != 0)
            {
                ThrowOutOfBounds(end, capacity);
            }

            long objectSize = _object.QuerySize();
            if (objectSize < capacity)
            {
                ThrowHelper.ThrowDamaged(Name, $"its header says {capacity} bytes but the backing object has only {objectSize}.");
            }

            _object.MapMore(capacity);
            Volatile.Write(ref _mapped, capacity);
        }
    }

    /// <summary>
    /// Grows the backing object to <paramref name="newCapacity"/> bytes (pages reserved), maps it here,
    /// and then publishes the new capacity for peers. The caller serializes growth (the heap lock).
    /// </summary>
    public void Grow(long newCapacity)
    {
        lock (_mapLock)
        {
            long current = Volatile.Read(ref Header.Capacity);
            if (newCapacity <= current)
            {
                return;
            }

            if (newCapacity > _maxCapacity)
            {
                ThrowHelper.ThrowOutOfMemory($"Segment '{Name}' cannot grow to {newCapacity} bytes: its MaxCapacity is {_maxCapacity} (SegmentOptions.MaxCapacity, set when the segment is made).");
            }

            _object.Extend(newCapacity);
            _object.MapMore(newCapacity);
            Volatile.Write(ref _mapped, newCapacity);
            // Published last: a peer that sees the new capacity finds the object already that large.
            Volatile.Write(ref Header.Capacity, newCapacity);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Check(long offset, int length)
    {
        ulong mapped = (ulong)Volatile.Read(ref _mapped);
        if ((ulong)offset > mapped || (uint)length > mapped - (ulong)offset)
        {
            CheckSlow(offset, length);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CheckSlow(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > _maxCapacity - length)
        {
            ThrowOutOfBounds(offset + (long)length, _maxCapacity);
        }

        EnsureMapped(offset + length);
    }

    [DoesNotReturn]
    private void ThrowOutOfBounds(long end, long limit) =>
        ThrowHelper.ThrowDamaged(Name, $"an offset or length read from shared memory reaches byte {end}, beyond the segment's {limit} bytes.");

    [DoesNotReturn]
    private void ThrowMisaligned(long offset, Type type) =>
        ThrowHelper.ThrowDamaged(Name, $"offset {offset} read from shared memory is not aligned for {type.Name}.");

    /// <summary>The bytes of an unmanaged value of the caller's (a topic message made of a struct), without copying.</summary>
    public static ReadOnlySpan<byte> BytesOf<T>(in T value)
        where T : unmanaged => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));

    /// <summary>The writable bytes of an unmanaged value of the caller's, without copying.</summary>
    public static Span<byte> WritableBytesOf<T>(ref T value)
        where T : unmanaged => MemoryMarshal.AsBytes(new Span<T>(ref value));
}
