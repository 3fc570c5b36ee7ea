using System.Runtime.InteropServices;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Objects;

/// <summary>
/// The named-object directory's shared layouts: its control block (at
/// <see cref="SegmentLayout.DirectoryControlOffset"/>), its hash table (a heap block: a
/// <see cref="DirectoryTableHeader"/> and then <see cref="DirectoryEntry"/> slots), and the object
/// block (an <see cref="ObjectHeader"/>, the name, the type's name, then the value). Every offset of
/// these three layouts is named here; nothing else computes them.
/// </summary>
internal static class DirectoryLayout
{
    public const uint TableMagic = 0x5249_4453; // "SDIR"

    /// <summary>
    /// The names the library gives its own objects begin with this (channels, topics, synchronization
    /// objects: <c>shmc.channel.</c>, <c>shmc.topic.</c>, <c>shmc.sync.</c>): users' named objects may not,
    /// so that no user call can make, find or destroy one of them.
    /// </summary>
    public const string ReservedPrefix = "shmc.";
    public const uint ObjectMagic = 0x4A42_4F53; // "SOBJ"

    /// <summary>The block tag of object blocks (named and anonymous).</summary>
    public const uint ObjectBlockTag = 0x4F42_4A31; // "OBJ1"

    public const int TableHeaderSize = 16;
    public const int EntrySize = 32;

    /// <summary>The smallest table, and the only legal capacities are powers of two from here.</summary>
    public const int InitialCapacity = 16;

    /// <summary>The largest table a damaged header may claim before we call it damaged.</summary>
    public const uint MaxCapacity = 1u << 24;

    /// <summary>Type names are stored truncated to this many UTF-8 bytes.</summary>
    public const int MaxTypeNameBytes = 256;

    /// <summary>Values start on this boundary inside an object block.</summary>
    public const int ValueAlignment = 16;

    /// <summary>Bytes of a table of <paramref name="capacity"/> slots.</summary>
    public static long TableSize(uint capacity) => TableHeaderSize + ((long)capacity * EntrySize);

    /// <summary>Where slot <paramref name="index"/> of the table at <paramref name="table"/> is.</summary>
    public static long EntryOffset(long table, int index) => table + TableHeaderSize + ((long)index * EntrySize);

    /// <summary>Where an object's name starts, from its block's first usable byte.</summary>
    public static long NameOffset(long payload) => payload + ObjectHeader.Size;

    /// <summary>Where an object's type name starts, from its block's first usable byte.</summary>
    public static long TypeNameOffset(long payload, uint nameLength) => payload + ObjectHeader.Size + nameLength;

    /// <summary>Where the value goes in a new object block (from the block's first usable byte).</summary>
    public static int ValueOffsetFor(int nameLength, int typeNameLength) =>
        (ObjectHeader.Size + nameLength + typeNameLength + ValueAlignment - 1) & ~(ValueAlignment - 1);
}

/// <summary>
/// The directory's control block: its lock on a line of its own (written by every contender), and the
/// table handle and intent record (written only by the lock holder) on the next.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct DirectoryControl
{
    public const int Size = 256;

    public const int IntentNone = 0;
    public const int IntentInsert = 1;
    public const int IntentDestroy = 2;
    public const int IntentRehash = 3;

    [FieldOffset(0)] public int Lock;

    // Guarded by the lock.
    [FieldOffset(128)] public ulong Table;       // handle of the hash table, 0 until the first object
    [FieldOffset(136)] public int IntentOp;      // what the holder is in the middle of
    [FieldOffset(144)] public ulong IntentHandle;
    [FieldOffset(152)] public ulong IntentHandle2;
}

/// <summary>The header of the directory's hash table.</summary>
[StructLayout(LayoutKind.Explicit, Size = DirectoryLayout.TableHeaderSize)]
internal struct DirectoryTableHeader
{
    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint Capacity;
    [FieldOffset(8)] public uint Count;
    [FieldOffset(12)] public uint Tombstones;
}

/// <summary>One slot of the directory's hash table.</summary>
[StructLayout(LayoutKind.Explicit, Size = DirectoryLayout.EntrySize)]
internal struct DirectoryEntry
{
    public const int Empty = 0;
    public const int Used = 1;
    public const int Tombstone = 2;

    [FieldOffset(0)] public int State;
    [FieldOffset(4)] public uint NameHash;
    [FieldOffset(8)] public ulong Handle;
    [FieldOffset(16)] public ulong Fingerprint;
    [FieldOffset(24)] public uint TypeSize;
    [FieldOffset(28)] public uint NameLength;
}

/// <summary>The header of an object block (named or anonymous).</summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct ObjectHeader
{
    public const int Size = 32;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public uint NameLength;
    [FieldOffset(8)] public uint TypeNameLength;
    [FieldOffset(12)] public uint TypeSize;
    [FieldOffset(16)] public ulong Fingerprint;
    [FieldOffset(24)] public uint ValueOffset;
    [FieldOffset(28)] public uint Reserved;
}

/// <summary>An object found or made by the directory: its block, and where its value starts.</summary>
internal readonly record struct ObjectRef(ShmHandle Block, long ValueOffset)
{
    public bool IsNull => Block.IsNull;
}
