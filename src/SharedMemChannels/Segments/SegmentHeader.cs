using System.Runtime.InteropServices;

namespace SharedMemChannels.Segments;

/// <summary>
/// The first page of every segment. This type is the only description of that layout: every offset
/// is named here. The first 24 bytes (magic, version, header size, state, flags) are a stable prefix
/// that no future version moves, so that any version can say "not mine" cleanly.
/// </summary>
/// <remarks>
/// Shared words are touched only through <see cref="Volatile"/> and <see cref="Interlocked"/>; the
/// fields are plain so that the struct maps onto shared memory as is.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct SegmentHeader
{
    /// <summary>The header's size: one page.</summary>
    public const int Size = 4096;

    /// <summary>"SHMCSEG1" read as a little-endian 64-bit integer.</summary>
    public const ulong MagicValue = 0x3147455343_4D4853;

    /// <summary>The layout version this library writes and reads.</summary>
    public const uint CurrentVersion = 2;

    /// <summary>Where the segment's name is stored, as UTF-8.</summary>
    public const int NameOffset = 128;

    /// <summary>Bytes reserved for the name.</summary>
    public const int NameCapacity = 256;

    public const int StateInitializing = 0;
    public const int StateReady = 1;

    public const uint FlagRemoveOnLastDetach = 1;

    // Stable prefix.
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public uint LayoutVersion;
    [FieldOffset(12)] public uint HeaderSize;
    [FieldOffset(16)] public int State; // futex word: openers sleep on it while the creator initializes
    [FieldOffset(20)] public uint Flags;

    // Written once by the creator, covered by Checksum.
    [FieldOffset(32)] public long MaxCapacity;
    [FieldOffset(40)] public long InitialCapacity;
    [FieldOffset(48)] public int CreatorPid;
    [FieldOffset(52)] public uint Mode;
    [FieldOffset(56)] public ulong CreatorStartTime;
    [FieldOffset(64)] public ulong CreatorPidNamespace;
    [FieldOffset(72)] public long CreatedUnixMs;
    [FieldOffset(80)] public uint ProcessTableOffset;
    [FieldOffset(84)] public uint ProcessTableSlots;
    [FieldOffset(88)] public uint HeapControlOffset;
    [FieldOffset(92)] public uint HeapStart;
    [FieldOffset(96)] public uint NameLength;
    [FieldOffset(100)] public uint Backend;
    [FieldOffset(104)] public ulong Checksum;

    // Mutable words, on a line of their own.
    [FieldOffset(1024)] public long Capacity; // bytes of the backing object in use; only grows
}
