using System.Numerics;
using System.Runtime.InteropServices;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Heap;

/// <summary>
/// The heap's control block, at <see cref="SegmentLayout.HeapControlOffset"/>: the lock, the intent
/// record, counters, and the two-level segregated-fit (TLSF) index: a first-level bitmap, a
/// second-level bitmap per first level, and the head of each free list.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 512)]
internal struct HeapControl
{
    public const ulong MagicValue = 0x3150_4145_4843_4D53; // "SMCHEAP1"

    public const int SlLog2 = 5;
    public const int SlCount = 1 << SlLog2;
    public const int FlShift = SlLog2 + 4;          // sizes below 512 bytes share the first level, in 16-byte steps
    public const int SmallBlockSize = 1 << FlShift; // 512
    public const int FlCount = 28;                  // first levels up to 2^36 bytes (SizeUnits is 32 bits)

    /// <summary>Offset of the second-level bitmaps (one uint per first level) from the control block.</summary>
    public const int SlBitmapsOffset = 512;

    /// <summary>Offset of the free-list heads (one long per (first, second) level pair) from the control block.</summary>
    public const int HeadsOffset = 1024;

    public const int EndOffset = HeadsOffset + (FlCount * SlCount * 8);

    public const int IntentNone = 0;
    public const int IntentFree = 1;

    // Identity.
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public long HeapStart;

    // Guarded by the lock.
    [FieldOffset(16)] public long HeapEnd;     // one past the end sentinel
    [FieldOffset(24)] public long FreeBytes;   // bytes in free blocks of the index
    [FieldOffset(32)] public long FreeBlocks;
    [FieldOffset(40)] public uint FlBitmap;
    [FieldOffset(44)] public uint NextGeneration;
    [FieldOffset(48)] public long Recoveries;  // times a dead holder's heap was repaired
    [FieldOffset(56)] public long Reclaims;    // dead processes whose blocks were reclaimed

    // The intent record: what the lock holder is in the middle of, for whoever takes over from it.
    [FieldOffset(64)] public int IntentOp;
    [FieldOffset(68)] public uint IntentGeneration;
    [FieldOffset(72)] public long IntentOffset;

    // The lock word, on a line of its own.
    [FieldOffset(128)] public int Lock;

    /// <summary>The (first, second) level of the list a free block of <paramref name="size"/> bytes belongs to.</summary>
    public static (int Fl, int Sl) MappingInsert(long size)
    {
        if (size < SmallBlockSize)
        {
            return (0, (int)(size / (SmallBlockSize / SlCount)));
        }

        int fls = 63 - BitOperations.LeadingZeroCount((ulong)size);
        int sl = (int)(size >> (fls - SlLog2)) ^ SlCount;
        return (fls - (FlShift - 1), sl);
    }

    /// <summary>
    /// The first list whose blocks are all at least <paramref name="size"/> bytes: rounding up to the next
    /// list gives O(1) "good fit" without walking a list.
    /// </summary>
    public static (int Fl, int Sl) MappingSearch(long size)
    {
        if (size >= SmallBlockSize)
        {
            int fls = 63 - BitOperations.LeadingZeroCount((ulong)size);
            size += (1L << (fls - SlLog2)) - 1;
        }

        return MappingInsert(size);
    }
}
