using System.Globalization;

namespace SharedMemChannels;

/// <summary>
/// A reference to a block of a <see cref="SharedSegment"/>'s heap that means the same in every process:
/// the block's offset and a check value (its allocation generation), never a pointer. Store it in shared
/// memory, pass it through channels, send it as a number; resolve it with the segment.
/// </summary>
/// <remarks>
/// A handle to a block that was freed, or that belongs to another segment, is detected when used (with
/// high probability: the check is 24 bits of generation plus the block layout) and rejected with an exception.
/// </remarks>
public readonly struct ShmHandle : IEquatable<ShmHandle>
{
    private const int GenerationBits = 24;
    private const ulong GenerationMask = (1UL << GenerationBits) - 1;
    private const int OffsetShift = 4;

    private ShmHandle(ulong value) => Value = value;

    /// <summary>The handle that refers to nothing.</summary>
    public static ShmHandle Null => default;

    /// <summary>The handle as one 64-bit number (0 for <see cref="Null"/>), for storage and transport.</summary>
    public ulong Value { get; }

    /// <summary>Whether this is <see cref="Null"/>.</summary>
    public bool IsNull => Value == 0;

    /// <summary>The block's offset in its segment.</summary>
    internal long Offset => (long)(Value >> GenerationBits) << OffsetShift;

    /// <summary>The low bits of the block's allocation generation.</summary>
    internal uint Generation => (uint)(Value & GenerationMask);

    /// <summary>Rebuilds a handle from <see cref="Value"/>.</summary>
    /// <param name="value">A value from <see cref="Value"/>.</param>
    public static ShmHandle FromValue(ulong value) => new(value);

    internal static ShmHandle Create(long offset, uint generation) =>
        new(((ulong)offset >> OffsetShift << GenerationBits) | (generation & GenerationMask));

    /// <inheritdoc />
    public bool Equals(ShmHandle other) => Value == other.Value;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ShmHandle other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => Value.GetHashCode();

    /// <inheritdoc />
    public override string ToString() =>
        IsNull ? "ShmHandle(null)" : string.Create(CultureInfo.InvariantCulture, $"ShmHandle(offset {Offset}, gen {Generation})");

    /// <summary>Whether two handles are the same.</summary>
    public static bool operator ==(ShmHandle left, ShmHandle right) => left.Equals(right);

    /// <summary>Whether two handles differ.</summary>
    public static bool operator !=(ShmHandle left, ShmHandle right) => !left.Equals(right);
}
