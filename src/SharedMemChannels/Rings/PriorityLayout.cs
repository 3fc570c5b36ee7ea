namespace SharedMemChannels.Rings;

/// <summary>
/// The one descriptor of a prioritized channel's shared layout (<see cref="RingKind.Prioritized"/>): the
/// heap descriptor, the comparer's identity and the intent record that follow the ring header in the
/// channel's ring block, and the element array (a heap block of its own). Every offset of the structure
/// is named here and nowhere else.
/// </summary>
/// <remarks>
/// <code>
/// ring block (offsets from the ring's start; lines 0..15 are the usual RingHeader: Tail, Head, counters, events, completion)
///   line 16  heap lock (RobustLock), initial capacity, element array handle and capacity; resizes;
///            comparer fingerprint and identity length
///   line 17  intent record: op, hole, target, path, index, resize handles and capacity
///   18..19   the comparer's identity (UTF-8, for messages and tools)
///   20..     the intent record's element (the item being moved), 8-aligned
/// element array (a heap block, tag PRQ1): capacity elements back to back from the payload's start
/// </code>
/// The heap holds Tail - Head items (the ring header's counters: Tail counts insertions, Head removals),
/// in array positions [0, Tail - Head), ordered as a binary min-heap by the channel's comparer:
/// position i's children are 2i + 1 and 2i + 2.
/// </remarks>
internal static class PriorityLayout
{
    private const int Line = RingLayout.LineSize;
    private const int Base = RingLayout.SlotsOffset;

    /// <summary>The heap tag of element array blocks, for inspection ("PRQ1").</summary>
    public const uint ArrayTag = 0x5052_5131;

    /// <summary>The largest initial capacity (the options' chunk capacity).</summary>
    public const int MaxInitialCapacity = ChainLayout.MaxChunkCapacity;

    /// <summary>The deepest a heap of at most 2^31 items can be: sifts never take more steps.</summary>
    public const int MaxDepth = 32;

    // Line 16: the lock, the array, statistics and the comparer's fingerprint (written at creation).
    public const int LockOffset = Base;
    public const int InitialCapacityOffset = Base + 4;

    /// <summary>The element array's heap handle (0 until the first item arrives).</summary>
    public const int ArrayOffset = Base + 8;

    /// <summary>How many elements the array has room for (0 without an array).</summary>
    public const int ArrayCapacityOffset = Base + 16;

    /// <summary>Times the array was replaced by a larger or smaller one (statistics).</summary>
    public const int ResizesOffset = Base + 24;

    /// <summary>FNV-1a 64 of the comparer identity's UTF-8 (never 0).</summary>
    public const int ComparerFingerprintOffset = Base + 32;
    public const int ComparerIdentityLengthOffset = Base + 40;

    // Line 17: the intent record, written under the lock before a multi-step update.
    /// <summary>What the lock holder is doing: <see cref="IntentNone"/>, <see cref="IntentInsert"/>, <see cref="IntentRemove"/>, <see cref="IntentResize"/>.</summary>
    public const int IntentOpOffset = Base + Line;

    /// <summary>Insert / remove: the array position that logically holds the intent's element now.</summary>
    public const int IntentHoleOffset = Base + Line + 8;

    /// <summary>Insert / remove: where the element ends (decided before anything moved).</summary>
    public const int IntentTargetOffset = Base + Line + 16;

    /// <summary>Remove: which child the sift-down takes at each depth (bit d: 1 for the right child).</summary>
    public const int IntentPathOffset = Base + Line + 24;

    /// <summary>Insert: the new Tail; remove: the new Head.</summary>
    public const int IntentIndexOffset = Base + Line + 32;

    /// <summary>Resize: the new array's handle, the old one's, the new capacity.</summary>
    public const int IntentNewArrayOffset = Base + Line + 40;
    public const int IntentOldArrayOffset = Base + Line + 48;
    public const int IntentCapacityOffset = Base + Line + 56;

    public const int IntentNone = 0;
    public const int IntentInsert = 1;
    public const int IntentRemove = 2;
    public const int IntentResize = 3;

    // Lines 18..19: the comparer's identity text.
    public const int ComparerIdentityOffset = Base + (2 * Line);
    public const int ComparerIdentityCapacity = 2 * Line;

    /// <summary>Line 20: the element the intent record moves (an insert's new item, a remove's last item).</summary>
    public const int IntentItemOffset = Base + (4 * Line);

    /// <summary>Bytes after the ring header: the descriptor lines and the intent's element (8-aligned).</summary>
    public static long DescriptorBytes(int elementSize) => (4 * Line) + ((elementSize + 7L) & ~7L);

    /// <summary>The heap allocation an array of <paramref name="capacity"/> elements needs.</summary>
    public static long ArrayBytes(long capacity, int elementSize) => capacity * elementSize;

    /// <summary>Where array position <paramref name="index"/> is, from the array's start.</summary>
    public static long ElementOffset(long index, int elementSize) => index * elementSize;
}
