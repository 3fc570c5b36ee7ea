namespace SharedMemChannels.Rings;

/// <summary>
/// The one descriptor of an unbounded channel's shared layout (<see cref="RingKind.Unbounded"/>): the
/// chain descriptor that follows the ring header in the channel's ring block, the pin table, and the
/// layout of each chunk. Every offset of the structure is named here and nowhere else.
/// </summary>
/// <remarks>
/// <code>
/// ring block (offsets from the ring's start; lines 0..15 are the usual RingHeader: counters, events, completion)
///   line 16  chain lock (RobustLock), chunk capacity, cell size, chunk allocation size, intent record
///   line 17  the chain: first (oldest allocated) chunk and its index, tail (newest) chunk and its index
///   18..33   pin table: 64 rows of { owner, read pin, write pin } (a pin is a chunk index + 1; 0 = none)
/// chunk (a heap block; offsets from the chunk's line-aligned start)
///   line 0   magic, index, next chunk's handle, capacity, cell size
///   line 1.. cells: [64-bit cell word][element], as the MPMC ring's (RingLayout.CellWordOffset / CellItemOffset)
/// </code>
/// Positions are global: position p lives in chunk p / capacity at cell p % capacity, and the ring
/// header's Tail and Head count positions exactly as a bounded MPMC ring's do. A chunk is used once
/// (no laps): its cell words start at their own positions, so a word can never be mistaken for one of
/// another chunk's.
/// </remarks>
internal static class ChainLayout
{
    private const int Line = RingLayout.LineSize;
    private const int Base = RingLayout.SlotsOffset;

    /// <summary>"SHMCHNK1", little-endian: the first word of every chunk.</summary>
    public const long ChunkMagic = 0x314B_4E48_434D_4853;

    /// <summary>The heap tag of chunk blocks, for inspection ("CHK1").</summary>
    public const uint ChunkTag = 0x4348_4B31;

    /// <summary>The largest chunk capacity.</summary>
    public const int MaxChunkCapacity = 1 << 20;

    // Line 16: the lock and what never changes, then the intent record (written under the lock).
    public const int LockOffset = Base;
    public const int ChunkCapacityOffset = Base + 4;
    public const int CellSizeOffset = Base + 8;
    public const int ChunkBytesOffset = Base + 16;

    /// <summary>What the lock holder is doing (<see cref="IntentNone"/>, <see cref="IntentLink"/>, <see cref="IntentFree"/>).</summary>
    public const int IntentOpOffset = Base + 24;
    public const int IntentChunkOffset = Base + 32;
    public const int IntentIndexOffset = Base + 40;

    /// <summary>Chunks freed since the channel was made (statistics).</summary>
    public const int FreedOffset = Base + 48;

    public const int IntentNone = 0;
    public const int IntentLink = 1;
    public const int IntentFree = 2;

    // Line 17: the chain (written under the lock; read lock-free, validated).
    public const int FirstChunkOffset = Base + Line;
    public const int FirstIndexOffset = Base + Line + 8;
    public const int TailChunkOffset = Base + Line + 16;
    public const int TailIndexOffset = Base + Line + 24;

    // Lines 18..: the pin table.
    public const int PinsOffset = Base + (2 * Line);
    public const int PinRows = 64;
    public const int PinRowSize = 32;
    public const int PinOwnerOffset = 0;
    public const int PinReadOffset = 8;
    public const int PinWriteOffset = 16;

    /// <summary>Bytes of the chain descriptor (after the ring header).</summary>
    public const int DescriptorBytes = (2 * Line) + (PinRows * PinRowSize);

    /// <summary>Where pin row <paramref name="row"/> is, from the ring's start.</summary>
    public static int PinRowOffset(int row) => PinsOffset + (row * PinRowSize);

    // A chunk: its first line, then the cells.
    public const int ChunkMagicOffset = 0;
    public const int ChunkIndexOffset = 8;
    public const int ChunkNextOffset = 16;
    public const int ChunkCapacityInChunkOffset = 24;
    public const int ChunkCellSizeOffset = 28;
    public const int ChunkCellsOffset = Line;

    /// <summary>Bytes of a chunk from its line-aligned start.</summary>
    public static long ChunkRequiredBytes(int capacity, int cellSize) => ChunkCellsOffset + ((long)capacity * cellSize);

    /// <summary>The heap allocation a chunk needs: its bytes plus room to align its start to a line.</summary>
    public static long ChunkAllocationBytes(int capacity, int cellSize) => ChunkRequiredBytes(capacity, cellSize) + Line;

    /// <summary>Where cell <paramref name="index"/> of a chunk is, from the chunk's start.</summary>
    public static long CellOffset(long index, int cellSize) => ChunkCellsOffset + (index * cellSize);

    /// <summary>The line-aligned start of a chunk whose heap payload starts at <paramref name="payload"/>.</summary>
    public static long ChunkStart(long payload) => (payload + Line - 1) & ~(long)(Line - 1);
}
