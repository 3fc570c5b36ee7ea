using SharedMemChannels.Common;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Heap;

/// <summary>
/// The one walk over the heap's physical chain of blocks, from the heap's start to the end sentinel.
/// Each step checks what it reads from shared memory (the check value, a size that is at least the
/// minimum and stays inside the published capacity, a known state), so that the callers (statistics,
/// the consistency check, the rebuild after a crash) never step outside the mapping or loop forever:
/// every step moves forward by at least <see cref="BlockHeader.MinBlockSize"/>.
/// </summary>
/// <example>
/// <code>
/// var chain = new BlockChain(memory);
/// while (chain.MoveNext()) { ... chain.Offset, chain.Size, chain.State, chain.Block ... }
/// // chain.Offset is now the sentinel's offset
/// </code>
/// </example>
internal ref struct BlockChain
{
    private readonly SegmentMemory _m;
    private readonly long _capacity;
    private long _next;

    public BlockChain(SegmentMemory memory)
    {
        _m = memory;
        _capacity = Volatile.Read(ref memory.Header.Capacity);
        _next = SegmentLayout.HeapStart;
        Offset = 0;
        Size = 0;
        State = 0;
        StateGen = 0;
    }

    /// <summary>The current block's offset; after the walk, the end sentinel's.</summary>
    public long Offset { get; private set; }

    /// <summary>The current block's size in bytes (header included), as read when the step was taken.</summary>
    public long Size { get; private set; }

    /// <summary>The current block's state (one of <see cref="BlockHeader"/>'s states), as read when the step was taken.</summary>
    public uint State { get; private set; }

    /// <summary>The current block's state and generation word, as read when the step was taken.</summary>
    public ulong StateGen { get; private set; }

    /// <summary>The current block's header, in shared memory.</summary>
    public readonly ref BlockHeader Block => ref _m.Ref<BlockHeader>(Offset);

    /// <summary>Steps to the next block; false once the end sentinel is reached (then <see cref="Offset"/> is the sentinel's).</summary>
    public bool MoveNext()
    {
        long offset = _next;
        if (offset > _capacity - BlockHeader.SentinelSize)
        {
            ThrowHelper.ThrowDamaged(_m.Name, $"the heap's block chain runs past the segment's {_capacity} bytes without an end sentinel.");
        }

        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        if (block.Check != BlockHeader.CheckFor(offset))
        {
            ThrowHelper.ThrowDamaged(_m.Name, $"the heap block at offset {offset} is damaged: its check value is wrong.");
        }

        Offset = offset;
        StateGen = Volatile.Read(ref block.StateGen);
        State = BlockHeader.StateOf(StateGen);
        if (State == BlockHeader.StateSentinel)
        {
            Size = BlockHeader.SentinelSize;
            return false;
        }

        if (State is not (BlockHeader.StateFree or BlockHeader.StateAllocated or BlockHeader.StateCached))
        {
            ThrowHelper.ThrowDamaged(_m.Name, $"the heap block at offset {offset} is damaged: its state {BlockHeader.StateName(State)} is unknown.");
        }

        Size = (long)Volatile.Read(ref block.SizeUnits) * BlockHeader.Unit;
        if (Size < BlockHeader.MinBlockSize || Size > _capacity - offset)
        {
            ThrowHelper.ThrowDamaged(_m.Name, $"the heap block at offset {offset} is damaged: its size {Size} does not fit.");
        }

        _next = offset + Size;
        return true;
    }
}
