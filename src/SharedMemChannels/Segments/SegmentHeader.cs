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

    // Where each field is. The header is read in two ways, through this struct (mapped) and from a
    // byte copy (SegmentHeaderPeek, before anything is trusted): both use these names.
    public const int MagicOffset = 0;
    public const int LayoutVersionOffset = 8;
    public const int HeaderSizeOffset = 12;
    public const int StateOffset = 16;
    public const int FlagsOffset = 20;

    /// <summary>Where the written-once fields start; they are covered by <see cref="Checksum"/>.</summary>
    public const int WrittenOnceOffset = 32;
    public const int MaxCapacityOffset = WrittenOnceOffset;
    public const int InitialCapacityOffset = 40;
    public const int CreatorPidOffset = 48;
    public const int ModeOffset = 52;
    public const int CreatorStartTimeOffset = 56;
    public const int CreatorPidNamespaceOffset = 64;
    public const int CreatedUnixMsOffset = 72;
    public const int ProcessTableOffsetOffset = 80;
    public const int ProcessTableSlotsOffset = 84;
    public const int HeapControlOffsetOffset = 88;
    public const int HeapStartOffset = 92;
    public const int NameLengthOffset = 96;
    public const int BackendOffset = 100;
    public const int ChecksumOffset = 104;

    /// <summary>Where the mutable words start, on a line of their own; the checksum ends before them.</summary>
    public const int MutableOffset = 1024;
    public const int CapacityOffset = MutableOffset;

    /// <summary>
    /// Where the count of the segment's channels is (see <see cref="ChannelCount"/>): a mutable word on the
    /// line after the capacity's (each written by other parties), zero in segments made before it was kept.
    /// </summary>
    public const int ChannelCountOffset = MutableOffset + SegmentLayout.CacheLine;

    // Stable prefix.
    [FieldOffset(MagicOffset)] public ulong Magic;
    [FieldOffset(LayoutVersionOffset)] public uint LayoutVersion;
    [FieldOffset(HeaderSizeOffset)] public uint HeaderSize;
    [FieldOffset(StateOffset)] public int State; // futex word: openers sleep on it while the creator initializes
    [FieldOffset(FlagsOffset)] public uint Flags;

    // Written once by the creator, covered by Checksum.
    [FieldOffset(MaxCapacityOffset)] public long MaxCapacity;
    [FieldOffset(InitialCapacityOffset)] public long InitialCapacity;
    [FieldOffset(CreatorPidOffset)] public int CreatorPid;
    [FieldOffset(ModeOffset)] public uint Mode;
    [FieldOffset(CreatorStartTimeOffset)] public ulong CreatorStartTime;
    [FieldOffset(CreatorPidNamespaceOffset)] public ulong CreatorPidNamespace;
    [FieldOffset(CreatedUnixMsOffset)] public long CreatedUnixMs;
    [FieldOffset(ProcessTableOffsetOffset)] public uint ProcessTableOffset;
    [FieldOffset(ProcessTableSlotsOffset)] public uint ProcessTableSlots;
    [FieldOffset(HeapControlOffsetOffset)] public uint HeapControlOffset;
    [FieldOffset(HeapStartOffset)] public uint HeapStart;
    [FieldOffset(NameLengthOffset)] public uint NameLength;
    [FieldOffset(BackendOffset)] public uint Backend;
    [FieldOffset(ChecksumOffset)] public ulong Checksum;

    // Mutable words, on a line of their own.
    [FieldOffset(CapacityOffset)] public long Capacity; // bytes of the backing object in use; only grows

    /// <summary>
    /// Channels laid out in the segment and not yet destroyed (counted by the channel layer). A channel may
    /// hold items whose writes returned, so a remove-on-last-detach segment keeps its name while this is not
    /// zero: its last process to detach leaves it, and an opener attaches to it rather than replacing it.
    /// </summary>
    [FieldOffset(ChannelCountOffset)] public int ChannelCount;
}
