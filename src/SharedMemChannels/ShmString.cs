using SharedMemChannels.Segments;
using SharedMemChannels.Common;
using System.Runtime.InteropServices;
using SharedMemChannels.Objects;

namespace SharedMemChannels;

/// <summary>
/// A string whose characters live in a segment's heap: an 8-byte unmanaged struct (the handle of its
/// storage), so it can be a field of a named object or of a channel element, and any process that maps
/// the segment reads the same text. UTF-16, like <see cref="string"/>, so reading it copies nothing.
/// </summary>
/// <remarks>
/// Call the mutating methods on the struct where it lives in shared memory (through a <c>ref</c>, such
/// as <c>ptr.Value.Name.Assign(segment, "x")</c>): a copy would get the new storage while the original
/// kept the freed one. Not thread-safe: synchronize writers as for any shared data. The storage belongs
/// to the segment; <see cref="Free"/> returns it.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
public struct ShmString : IEquatable<ShmString>
{
    private const string Kind = "ShmString";
    private const uint CharTag = 0x6332_0001;
    private ulong _storage;

    /// <summary>The handle of the storage block, or null for an empty string that owns nothing.</summary>
    public readonly ShmHandle Storage => ShmHandle.FromValue(_storage);

    /// <summary>Whether the string owns no storage (a default <see cref="ShmString"/>).</summary>
    public readonly bool IsNull => _storage == 0;

    /// <summary>Creates a string in <paramref name="segment"/> holding <paramref name="value"/>.</summary>
    /// <param name="segment">The segment whose heap holds the characters.</param>
    /// <param name="value">The text.</param>
    /// <exception cref="OutOfSharedMemoryException">No room for the text.</exception>
    public static ShmString Create(SharedSegment segment, ReadOnlySpan<char> value)
    {
        var result = default(ShmString);
        result.Assign(segment, value);
        return result;
    }

    /// <summary>Replaces the text, reusing the storage when it is large enough.</summary>
    /// <param name="segment">The segment the string lives in.</param>
    /// <param name="value">The new text.</param>
    /// <exception cref="OutOfSharedMemoryException">No room for the text.</exception>
    /// <exception cref="InvalidSegmentException">The storage is damaged.</exception>
    public void Assign(SharedSegment segment, ReadOnlySpan<char> value)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (_storage != 0)
        {
            long chars = ContainerStorage.Open(segment.Attachment, _storage, ContainerStorage.StringTag, sizeof(char), CharTag, Kind, out _, out int capacity);
            if (capacity >= value.Length)
            {
                value.CopyTo(CharSpan(segment, chars, value.Length));
                ContainerStorage.SetCount(segment.Attachment, chars, value.Length);
                return;
            }
        }

        Replace(segment, value, ReadOnlySpan<char>.Empty, value.Length);
    }

    /// <summary>Adds <paramref name="value"/> at the end, growing the storage by doubling when needed.</summary>
    /// <param name="segment">The segment the string lives in.</param>
    /// <param name="value">The text to add.</param>
    /// <exception cref="OutOfSharedMemoryException">No room for the text.</exception>
    /// <exception cref="InvalidSegmentException">The storage is damaged.</exception>
    public void Append(SharedSegment segment, ReadOnlySpan<char> value)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (_storage == 0)
        {
            Assign(segment, value);
            return;
        }

        long chars = ContainerStorage.Open(segment.Attachment, _storage, ContainerStorage.StringTag, sizeof(char), CharTag, Kind, out int length, out int capacity);
        long newLength = (long)length + value.Length;
        if (newLength > (SharedSegment.MaxAllocationSize - ContainerStorage.HeaderSize) / sizeof(char))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(value), null, $"The string would exceed {SharedSegment.MaxAllocationSize} bytes.");
        }

        if (capacity >= newLength)
        {
            value.CopyTo(CharSpan(segment, chars + (length * sizeof(char)), value.Length));
            ContainerStorage.SetCount(segment.Attachment, chars, (int)newLength);
            return;
        }

        // The old characters stay valid until Replace frees their block, after copying them.
        Replace(segment, CharSpan(segment, chars, length), value, ContainerStorage.Grown(capacity, (int)newLength, 16));
    }

    /// <summary>The number of characters.</summary>
    /// <param name="segment">The segment the string lives in.</param>
    public readonly int GetLength(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (_storage == 0)
        {
            return 0;
        }

        ContainerStorage.Open(segment.Attachment, _storage, ContainerStorage.StringTag, sizeof(char), CharTag, Kind, out int length, out _);
        return length;
    }

    /// <summary>The characters, in shared memory (no copy). Valid until the string changes.</summary>
    /// <param name="segment">The segment the string lives in.</param>
    public readonly ReadOnlySpan<char> AsSpan(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        if (_storage == 0)
        {
            return ReadOnlySpan<char>.Empty;
        }

        long chars = ContainerStorage.Open(segment.Attachment, _storage, ContainerStorage.StringTag, sizeof(char), CharTag, Kind, out int length, out _);
        return CharSpan(segment, chars, length);
    }

    /// <summary>The text as a managed string (a copy).</summary>
    /// <param name="segment">The segment the string lives in.</param>
    public readonly string ToString(SharedSegment segment) => new(AsSpan(segment));

    /// <summary>Returns the storage to the heap; the string becomes empty.</summary>
    /// <param name="segment">The segment the string lives in.</param>
    public void Free(SharedSegment segment)
    {
        using SegmentAttachment.Use use = SharedSegment.EnterUse(segment);
        ContainerStorage.Free(segment.Attachment, ref _storage);
    }

    /// <inheritdoc />
    public readonly bool Equals(ShmString other) => _storage == other._storage;

    /// <inheritdoc />
    public override readonly bool Equals(object? obj) => obj is ShmString other && Equals(other);

    /// <inheritdoc />
    public override readonly int GetHashCode() => _storage.GetHashCode();

    /// <summary>Describes the string's storage (the text needs the segment: <see cref="ToString(SharedSegment)"/>).</summary>
    public override readonly string ToString() => $"ShmString({Storage})";

    /// <summary>Whether two values refer to the same storage.</summary>
    public static bool operator ==(ShmString left, ShmString right) => left.Equals(right);

    /// <summary>Whether two values refer to different storage.</summary>
    public static bool operator !=(ShmString left, ShmString right) => !left.Equals(right);

    private static Span<char> CharSpan(SharedSegment segment, long offset, int length) =>
        segment.Memory.Elements<char>(offset, length);

    /// <summary>Moves the text to new storage of <paramref name="capacity"/> characters: fill, publish the handle, free the old block.</summary>
    private void Replace(SharedSegment segment, ReadOnlySpan<char> first, ReadOnlySpan<char> second, int capacity)
    {
        int length = first.Length + second.Length;
        ShmHandle handle = ContainerStorage.Allocate(segment.Attachment, ContainerStorage.StringTag, sizeof(char), CharTag, Math.Max(capacity, length), Kind, out long chars);
        first.CopyTo(CharSpan(segment, chars, first.Length));
        second.CopyTo(CharSpan(segment, chars + (first.Length * sizeof(char)), second.Length));
        ContainerStorage.SetCount(segment.Attachment, chars, length);
        ContainerStorage.Publish(segment.Attachment, ref _storage, handle);
    }
}
