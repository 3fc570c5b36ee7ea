using SharedMemChannels.Segments;

namespace SharedMemChannels.Rings;

/// <summary>Which ring protocol a block holds.</summary>
internal enum RingKind
{
    /// <summary>One writer, one reader: plain head and tail counters, elements inline.</summary>
    Spsc = 1,

    /// <summary>Any number of writers and readers: per-cell sequence words with the claimant recorded (Vyukov, crash-safe).</summary>
    Mpmc = 2,

    /// <summary>
    /// An unbounded channel: this block holds the header and the chain descriptor (<see cref="ChainLayout"/>),
    /// the cells live in a chain of chunks taken from the heap (<see cref="UnboundedRing{T}"/>).
    /// </summary>
    Unbounded = 3,

    /// <summary>
    /// An unbounded prioritized channel: this block holds the header, the heap descriptor and the intent
    /// record (<see cref="PriorityLayout"/>); the items live in a binary heap in one heap block that grows
    /// and shrinks (<see cref="PriorityRing{T}"/>).
    /// </summary>
    Prioritized = 4,
}

/// <summary>
/// The one descriptor of a ring's shared layout: every offset of the header, the completion record,
/// the event counts and the cells is named here and nowhere else. Offsets are relative to the ring's
/// block, which starts on a <see cref="LineSize"/> boundary of the segment, so "separate lines" in
/// this table are separate 128-byte lines in memory.
/// </summary>
/// <remarks>
/// <code>
/// line 0  identity (written once, before Magic is published) and the rare crash counters
/// line 1  written by writers: Tail, Written, Dropped
/// line 2  written by readers: Head, Read
/// line 3  readers' event count ("not empty"): sequence bumped by writers, waiter count by readers
/// line 4  writers' event count ("not full"): sequence bumped by readers, waiter count by writers
/// 5..15   completion record: state word, type name and message (UTF-8, bounded)
/// 16..    slots: SPSC elements back to back; MPMC cells of [64-bit cell word][element], 8-aligned
/// </code>
/// </remarks>
internal static class RingLayout
{
    /// <summary>One padding unit: 128 bytes covers x64 adjacent-line prefetch and arm64 lines.</summary>
    public const int LineSize = 128;

    /// <summary>"SHMRING1", little-endian.</summary>
    public const long MagicValue = 0x31474E4952_4D4853;

    public const int CurrentVersion = 1;

    /// <summary>The largest capacity a ring accepts (the slot count must stay well inside the cell sequence's 39 bits).</summary>
    public const int MaxCapacity = 1 << 28;

    /// <summary>The largest element a ring holds (1 MiB).</summary>
    public const int MaxElementSize = 1 << 20;

    // Line 0: identity, written by the creator before Magic.
    public const int MagicOffset = 0;
    public const int VersionOffset = 8;
    public const int KindOffset = 12;
    public const int ElementSizeOffset = 16;
    public const int CapacityOffset = 20;
    public const int SlotCountOffset = 24;
    public const int CellSizeOffset = 28;
    public const int BlockLengthOffset = 32;

    /// <summary>Items a reader claimed and died holding (MPMC): never delivered, accounted here.</summary>
    public const int LostOffset = 40;

    /// <summary>Cells a writer claimed and died before publishing (MPMC): skipped, nothing was written.</summary>
    public const int SkippedOffset = 48;

    // Line 1: written by writers only.
    public const int TailOffset = LineSize;
    public const int WrittenOffset = LineSize + 8;
    public const int DroppedOffset = LineSize + 16;

    // Line 2: written by readers only.
    public const int HeadOffset = 2 * LineSize;
    public const int ReadOffset = (2 * LineSize) + 8;

    // Line 3: readers sleep here until something is written.
    public const int ReadersEventSequenceOffset = 3 * LineSize;
    public const int ReadersEventWaitersOffset = (3 * LineSize) + 4;

    // Line 4: writers sleep here until something is read.
    public const int WritersEventSequenceOffset = 4 * LineSize;
    public const int WritersEventWaitersOffset = (4 * LineSize) + 4;

    // Lines 5..15: the completion record.
    /// <summary>64-bit: state in the low 32 bits, the completer's <see cref="OwnerId"/> in the high 32.</summary>
    public const int CompletionStateOffset = 5 * LineSize;
    public const int CompletionTypeLengthOffset = (5 * LineSize) + 8;
    public const int CompletionMessageLengthOffset = (5 * LineSize) + 12;

    /// <summary>
    /// Waiters for the completion: an event count whose futex word is the low (little-endian) half of
    /// the state word, so a wait for "completed" sleeps until the state itself changes.
    /// </summary>
    public const int CompletionWaitersOffset = (5 * LineSize) + 16;
    public const int CompletionTypeOffset = (5 * LineSize) + 64;
    public const int MaxTypeNameBytes = 256;
    public const int CompletionMessageOffset = CompletionTypeOffset + MaxTypeNameBytes;
    public const int MaxMessageBytes = 1024;

    /// <summary>Where the slots start: after the header, on a line boundary.</summary>
    public const int SlotsOffset = 16 * LineSize;

    // MPMC cells: the cell word, then the element.
    public const int CellWordOffset = 0;
    public const int CellItemOffset = 8;

    // The MPMC cell word: a 39-bit sequence (compared modulo 2^39), a 24-bit claimant, a replace flag.
    public const int SequenceBits = 39;
    public const long SequenceMask = (1L << SequenceBits) - 1;
    public const int ClaimShift = SequenceBits;
    public const long ClaimMask = ((1L << 24) - 1) << ClaimShift;

    /// <summary>Set with a claimant when a DropNewest writer is replacing a published item in place.</summary>
    public const long ReplaceFlag = long.MinValue;

    /// <summary>The claimant field holds slot + 1 in 9 bits: this constant fails to compile if the process table outgrows it.</summary>
    public const uint ClaimSlotRoom = 511 - SegmentLayout.ProcessTableSlots;

    /// <summary>
    /// The slot count for a capacity: the next power of two, at least 2. With one slot an MPMC cell's
    /// "published for p" and "free for p + 1" would be the same word (Vyukov's queue needs two).
    /// </summary>
    public static int SlotCountFor(int capacity) => (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, 2));

    /// <summary>Bytes of one slot (SPSC) or cell (MPMC).</summary>
    /// <remarks>An unbounded channel's chunks hold MPMC cells (<see cref="ChainLayout"/>).</remarks>
    public static int CellSizeFor(RingKind kind, int elementSize) =>
        kind == RingKind.Spsc ? elementSize : (CellItemOffset + elementSize + 7) & ~7;

    /// <summary>Slots in the ring's own block: none for an unbounded channel (its cells are in the chunks).</summary>
    public static int SlotCountIn(RingKind kind, int capacity) => kind is RingKind.Unbounded or RingKind.Prioritized ? 0 : SlotCountFor(capacity);

    /// <summary>The bytes a ring of this shape needs, from its (line-aligned) start.</summary>
    /// <remarks>For <see cref="RingKind.Unbounded"/>, <paramref name="capacity"/> is the chunk capacity and the block holds the chain descriptor only;
    /// for <see cref="RingKind.Prioritized"/>, the block holds the heap descriptor and the intent record's element.</remarks>
    public static long RequiredBytes(RingKind kind, int elementSize, int capacity) => kind switch
    {
        RingKind.Unbounded => SlotsOffset + ChainLayout.DescriptorBytes,
        RingKind.Prioritized => SlotsOffset + PriorityLayout.DescriptorBytes(elementSize),
        _ => SlotsOffset + ((long)SlotCountFor(capacity) * CellSizeFor(kind, elementSize)),
    };

    /// <summary>Offset of slot <paramref name="index"/> (already masked) from the ring's start.</summary>
    public static long SlotOffset(long index, int cellSize) => SlotsOffset + (index * cellSize);

    /// <summary>A cell word: sequence (mod 2^39) and claim bits.</summary>
    public static long CellWord(long sequence, long claim) => (sequence & SequenceMask) | claim;

    /// <summary>The claim bits of a cell word (claimant and replace flag); 0 when unclaimed.</summary>
    public static long ClaimOf(long word) => word & ~SequenceMask;

    /// <summary>The cell word's sequence minus <paramref name="expected"/>, as a signed 39-bit difference.</summary>
    public static long SequenceDiff(long word, long expected) => ((word - expected) << (64 - SequenceBits)) >> (64 - SequenceBits);

    /// <summary>The claim bits naming <paramref name="owner"/>.</summary>
    public static long ClaimFor(OwnerId owner) =>
        ((long)((uint)(owner.Slot + 1) & 0x1FF) | ((long)(owner.Generation & 0x7FFF) << 9)) << ClaimShift;

    /// <summary>The claimant named by a cell word's claim bits.</summary>
    public static OwnerId ClaimantOf(long word)
    {
        long field = (word & ClaimMask) >> ClaimShift;
        return field == 0 ? OwnerId.None : OwnerId.From((int)(field & 0x1FF) - 1, (int)(field >> 9));
    }
}
