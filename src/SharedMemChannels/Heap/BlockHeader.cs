using System.Runtime.InteropServices;

namespace SharedMemChannels.Heap;

/// <summary>
/// The 32 bytes in front of every heap block. Sizes are in 16-byte units; the payload starts right
/// after the header and is 16-byte aligned. A free block also holds its free-list links in the first
/// 16 bytes of its payload (<see cref="NextFreeOffset"/>, <see cref="PrevFreeOffset"/>).
/// </summary>
/// <remarks>
/// Crash safety rests on one rule: the physical chain of blocks (each header's size leading to the
/// next header) is valid after every single store. Splits write the new tail block's header before
/// shrinking the block; merges grow a block with one store. So whoever takes over the heap lock from
/// a dead holder can rebuild every free list by walking the chain.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct BlockHeader
{
    public const int Size = 32;
    public const int Unit = 16;
    public const int MinBlockSize = 48; // header + the two free-list links, rounded to a unit
    public const int NextFreeOffset = Size;
    public const int PrevFreeOffset = Size + 8;
    public const int SentinelSize = Size;

    public const uint StateFree = 0xF4EE_B10C;
    public const uint StateAllocated = 0xA110_CA7E;
    public const uint StateCached = 0xCAC4_EDB1;
    public const uint StateSentinel = 0x5E47_1E1E;

    /// <summary>A function of the block's offset: a handle that points anywhere but a block start fails it.</summary>
    [FieldOffset(0)] public uint Check;

    /// <summary>The block's size in 16-byte units, header included.</summary>
    [FieldOffset(4)] public uint SizeUnits;

    /// <summary>State in the low 32 bits, generation in the high 32: one CAS changes both or neither.</summary>
    [FieldOffset(8)] public ulong StateGen;

    /// <summary>The previous block's size in units while that block is free in the heap; 0 otherwise.</summary>
    [FieldOffset(16)] public uint PrevFreeUnits;

    /// <summary>The owning process (<c>OwnerId</c>) of an allocated or cached block; 0 for the segment.</summary>
    [FieldOffset(20)] public uint Owner;

    /// <summary>The usable length the allocation asked for.</summary>
    [FieldOffset(24)] public uint Length;

    /// <summary>A tag for the layer above: a type tag for typed objects, the thread tag of a cached block.</summary>
    [FieldOffset(28)] public uint Tag;

    public static uint CheckFor(long offset) => unchecked((uint)((ulong)(offset >> 4) * 0x9E3779B1UL) ^ 0x534D_4843);

    public static ulong Pack(uint state, uint generation) => state | ((ulong)generation << 32);

    public static uint StateOf(ulong stateGen) => (uint)stateGen;

    public static uint GenerationOf(ulong stateGen) => (uint)(stateGen >> 32);

    public static string StateName(uint state) => state switch
    {
        StateFree => "free",
        StateAllocated => "allocated",
        StateCached => "cached",
        StateSentinel => "end",
        _ => $"0x{state:x8}",
    };
}
