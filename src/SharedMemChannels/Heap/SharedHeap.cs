using SharedMemChannels.Common;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Heap;

/// <summary>
/// The general-purpose allocator inside a segment: a two-level segregated-fit heap (TLSF: O(1)
/// allocate and free, immediate coalescing through boundary tags) shared by every thread of every
/// attached process, behind a <see cref="RobustLock"/>, with per-thread caches of small blocks in
/// front of it that allocate and free without any cross-process lock.
/// </summary>
/// <remarks>
/// <para>
/// Crash safety. The lock holder may be killed at any instruction. Every multi-step update keeps the
/// physical block chain walkable (see <see cref="BlockHeader"/>), and a free of a segment-owned block
/// is announced in the intent record first; so whoever takes the lock over from a dead holder finishes
/// that free and rebuilds the whole free index from the chain (<see cref="RecoverLocked"/>).
/// </para>
/// <para>
/// Ownership. Each allocated or cached block names its owning process (or the segment). When a
/// process is found dead, one walk frees every block it owned, its cached blocks included, so nothing
/// it held leaks and nothing any live process holds is touched.
/// </para>
/// </remarks>
internal sealed partial class SharedHeap : ILockRecovery
{
    private const long ControlOffset = SegmentLayout.HeapControlOffset;
    private const uint GenerationMask = 0xFF_FFFF;

    /// <summary>The largest allocation (1 GiB).</summary>
    public const int MaxAllocationSize = 1 << 30;

    private static int s_nextHeapId;

    private readonly SegmentAttachment? _attachment;
    private readonly SegmentMemory _m;
    private readonly ProcessTable _processes;
    private readonly string _name;
    private readonly OwnerId _owner;

    /// <summary>The heap as <paramref name="attachment"/> uses it: its owner id names the blocks and locks it takes.</summary>
    public SharedHeap(SegmentAttachment attachment)
    {
        _attachment = attachment;
        _m = attachment.Memory;
        _processes = attachment.Processes;
        _name = attachment.Name;
        _owner = attachment.Owner;
        Id = Interlocked.Increment(ref s_nextHeapId);
        ref HeapControl control = ref Control;
        if (Volatile.Read(ref control.Magic) != HeapControl.MagicValue || control.HeapStart != SegmentLayout.HeapStart)
        {
            ThrowHelper.ThrowDamaged(_name, "its heap control block is damaged.");
        }
    }

    /// <summary>Tells apart heaps of this process for the thread-local cache lookup.</summary>
    public int Id { get; }

    public OwnerId Owner => _owner;

    private ref HeapControl Control => ref _m.Ref<HeapControl>(ControlOffset);

    private const long HeapStart = SegmentLayout.HeapStart;

    /// <summary>Lays out an empty heap in a new segment: one free block and the end sentinel.</summary>
    public static void Initialize(SegmentMemory memory)
    {
        ref HeapControl control = ref memory.Ref<HeapControl>(ControlOffset);
        control.HeapStart = SegmentLayout.HeapStart;
        control.NextGeneration = 1;
        long capacity = memory.Header.Capacity;
        var heap = new SharedHeap(memory);
        heap.WriteSentinel(capacity - BlockHeader.SentinelSize);
        long size = capacity - BlockHeader.SentinelSize - SegmentLayout.HeapStart;
        heap.WriteFreeHeader(SegmentLayout.HeapStart, size);
        control.HeapEnd = capacity;
        heap.InsertFree(SegmentLayout.HeapStart, size);
        Volatile.Write(ref control.Magic, HeapControl.MagicValue);
    }

    /// <summary>
    /// A heap that is only read without its lock: by inspection, on a read-only mapping. It takes no
    /// lock and has no owner; calls that allocate, free or lock must not be made on it.
    /// </summary>
    public static SharedHeap ForInspection(SegmentMemory memory) => new(memory);

    /// <summary>A heap being laid out by its creator, or read by inspection: nothing here locks.</summary>
    private SharedHeap(SegmentMemory memory)
    {
        _m = memory;
        _processes = null!;
        _name = memory.Name;
    }

    // ---------------------------------------------------------------- allocation

    /// <summary>Allocates a block of <paramref name="size"/> usable bytes; false when the heap cannot.</summary>
    public bool TryAllocate(int size, ShmOwnership ownership, uint tag, out ShmHandle handle)
    {
        if ((uint)(size - 1) >= MaxAllocationSize)
        {
            ThrowHelper.ThrowSizeOutOfRange(size, MaxAllocationSize);
        }

        int blockSize = BlockSizeFor(size);
        uint owner = ownership == ShmOwnership.Segment ? 0 : _owner.Value;
        if (blockSize <= SizeClasses.MaxBlockSize)
        {
            ThreadCache cache = GetCache();
            int sizeClass = SizeClasses.ForAllocation(blockSize);
            if (cache.Counts[sizeClass] == 0)
            {
                Refill(cache, sizeClass);
            }

            while (cache.Counts[sizeClass] > 0)
            {
                long offset = cache.Pop(sizeClass);
                if (TryTakeCached(offset, (uint)size, owner, tag, out handle))
                {
                    return true;
                }
            }
        }

        return TryAllocateSlow(blockSize, (uint)size, owner, tag, out handle);
    }

    /// <summary>Hands a cached block to the caller. Only this thread touches its cached blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryTakeCached(long offset, uint length, uint owner, uint tag, out ShmHandle handle)
    {
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        ulong stateGen = Volatile.Read(ref block.StateGen);
        if (BlockHeader.StateOf(stateGen) != BlockHeader.StateCached || block.Owner != _owner.Value || block.Check != BlockHeader.CheckFor(offset))
        {
            // Not what we cached: someone wrote over it. Drop it from the cache rather than hand it out.
            handle = default;
            return false;
        }

        uint generation = NextCachedGeneration(BlockHeader.GenerationOf(stateGen));
        block.Length = length;
        block.Tag = tag;
        // Allocated while still owned by us: should we die before the next store, the block is
        // reclaimed with our other blocks instead of leaking as a segment block nobody references.
        Volatile.Write(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateAllocated, generation));
        if (owner != _owner.Value)
        {
            Volatile.Write(ref block.Owner, owner);
        }

        handle = ShmHandle.Create(offset, generation);
        return true;
    }

    private bool TryAllocateSlow(int blockSize, uint length, uint owner, uint tag, out ShmHandle handle)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long offset;
            using (HoldLock())
            {
                // Always allocated as ours first; see below for segment ownership.
                offset = AllocateLocked(blockSize, BlockHeader.StateAllocated, _owner.Value, length, tag);
                if (offset == 0 && TryGrowLocked(blockSize))
                {
                    offset = AllocateLocked(blockSize, BlockHeader.StateAllocated, _owner.Value, length, tag);
                }
            }

            if (offset != 0)
            {
                ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
                if (owner == 0)
                {
                    // See TryTakeCached: segment ownership is given only once the block is ours to give.
                    Volatile.Write(ref block.Owner, 0);
                }

                handle = ShmHandle.Create(offset, BlockHeader.GenerationOf(Volatile.Read(ref block.StateGen)));
                return true;
            }

            // Out of room: give back what this thread hoards, then what dead processes held, and retry.
            if (attempt == 0)
            {
                FlushCache(GetCache());
            }
            else if (attempt == 1 && _attachment!.ReclaimDeadProcesses() == 0)
            {
                break;
            }
        }

        handle = default;
        return false;
    }

    private void Refill(ThreadCache cache, int sizeClass)
    {
        int blockSize = SizeClasses.BlockSize(sizeClass);
        int want = Math.Max(1, SizeClasses.Capacity(sizeClass) / 2);
        using (HoldLock())
        {
            for (int i = 0; i < want; i++)
            {
                long offset = AllocateLocked(blockSize, BlockHeader.StateCached, _owner.Value, 0, cache.ThreadTag);
                if (offset == 0)
                {
                    if (i > 0 || !TryGrowLocked(blockSize * want))
                    {
                        break;
                    }

                    offset = AllocateLocked(blockSize, BlockHeader.StateCached, _owner.Value, 0, cache.ThreadTag);
                    if (offset == 0)
                    {
                        break;
                    }
                }

                cache.Push(sizeClass, offset);
            }
        }
    }

    // ---------------------------------------------------------------- free and access

    /// <summary>Frees a block. Throws for a null, foreign, stale or already freed handle.</summary>
    public void Free(ShmHandle handle)
    {
        long offset = ValidateHandle(handle, out ulong stateGen);
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        long blockSize = (long)block.SizeUnits * BlockHeader.Unit;
        int sizeClass = SizeClasses.ForFreedBlock(blockSize);
        if (sizeClass >= 0)
        {
            ThreadCache cache = GetCache();
            if (cache.Counts[sizeClass] == SizeClasses.Capacity(sizeClass))
            {
                FlushHalf(cache, sizeClass);
            }

            // The block becomes ours before it becomes cached: should we die in between it is reclaimed
            // as one of our allocated blocks, which it was about to stop being anyway.
            Volatile.Write(ref block.Owner, _owner.Value);
            block.Tag = cache.ThreadTag;
            if (Interlocked.CompareExchange(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateCached, BlockHeader.GenerationOf(stateGen)), stateGen) != stateGen)
            {
                ThrowHelper.ThrowNotAllocated(handle);
            }

            cache.Push(sizeClass, offset);
            return;
        }

        using (HoldLock())
        {
            ref HeapControl control = ref Control;
            control.IntentOffset = offset;
            control.IntentGeneration = BlockHeader.GenerationOf(stateGen);
            Volatile.Write(ref control.IntentOp, HeapControl.IntentFree);
            bool freed = Interlocked.CompareExchange(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, BlockHeader.GenerationOf(stateGen)), stateGen) == stateGen;
            if (freed)
            {
                ReleaseLocked(offset);
            }

            Volatile.Write(ref control.IntentOp, HeapControl.IntentNone);
            if (!freed)
            {
                ThrowHelper.ThrowNotAllocated(handle);
            }
        }
    }

    /// <summary>The usable bytes of an allocated block: exactly the length it was allocated with.</summary>
    public Span<byte> GetSpan(ShmHandle handle)
    {
        long offset = ValidateHandle(handle, out _);
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        uint length = block.Length;
        if (length > ((long)block.SizeUnits * BlockHeader.Unit) - BlockHeader.Size)
        {
            ThrowCorrupt(offset, $"its length {length} exceeds its size");
        }

        return _m.Span(offset + BlockHeader.Size, (int)length);
    }

    /// <summary>The offset of the block's first usable byte (for typed views that check their own bounds).</summary>
    public long GetPayloadOffset(ShmHandle handle, out int length, out uint tag)
    {
        long offset = ValidateHandle(handle, out _);
        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        length = (int)Math.Min(block.Length, ((long)block.SizeUnits * BlockHeader.Unit) - BlockHeader.Size);
        tag = block.Tag;
        return offset + BlockHeader.Size;
    }

    /// <summary>Gives a block to the segment or to this process.</summary>
    public void SetOwnership(ShmHandle handle, ShmOwnership ownership)
    {
        long offset = ValidateHandle(handle, out _);
        Volatile.Write(ref _m.Ref<BlockHeader>(offset).Owner, ownership == ShmOwnership.Segment ? 0 : _owner.Value);
    }

    /// <summary>Who owns a block: the segment, or a process (by owner id).</summary>
    public OwnerId GetOwner(ShmHandle handle)
    {
        long offset = ValidateHandle(handle, out _);
        return new OwnerId(Volatile.Read(ref _m.Ref<BlockHeader>(offset).Owner));
    }

    /// <summary>
    /// Checks that <paramref name="handle"/> names an allocated block of this heap and returns the
    /// block's offset. Every field is read from shared memory and checked before use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long ValidateHandle(ShmHandle handle, out ulong stateGen)
    {
        // A handle is the caller's argument: an offset outside the heap as it is now (beyond the
        // published capacity, even if within MaxCapacity) is a bad handle, not a damaged segment.
        long offset = handle.Offset;
        if (offset < HeapStart || offset > Volatile.Read(ref _m.Header.Capacity) - BlockHeader.MinBlockSize)
        {
            ThrowHelper.ThrowBadHandle(handle);
        }

        ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
        stateGen = Volatile.Read(ref block.StateGen);
        if (block.Check != BlockHeader.CheckFor(offset))
        {
            ThrowHelper.ThrowBadHandle(handle);
        }

        if (BlockHeader.StateOf(stateGen) != BlockHeader.StateAllocated || (BlockHeader.GenerationOf(stateGen) & GenerationMask) != handle.Generation)
        {
            ThrowHelper.ThrowNotAllocated(handle);
        }

        long size = (long)block.SizeUnits * BlockHeader.Unit;
        if (size < BlockHeader.MinBlockSize || offset + size > Volatile.Read(ref _m.Header.Capacity))
        {
            ThrowCorrupt(offset, $"its size {size} does not fit the segment");
        }

        return offset;
    }

    // ---------------------------------------------------------------- dead processes

    /// <summary>
    /// Frees every block owned by the dead process <paramref name="dead"/> (allocated or cached) and
    /// rebuilds the free index around them.
    /// </summary>
    public void ReclaimOwner(OwnerId dead)
    {
        if (dead.IsNone)
        {
            return;
        }

        using (HoldLock())
        {
            RebuildLocked(dead);
            Control.Reclaims++;
        }
    }

    // ---------------------------------------------------------------- lock

    /// <summary>Takes the heap lock, repairing the heap first if its holder died, until the scope is disposed.</summary>
    private Scope HoldLock() => RobustLock.Enter(ref Control.Lock, _owner, _processes, this);

    void ILockRecovery.RecoverLocked() => RecoverLocked();

    /// <summary>
    /// Repairs the heap after taking the lock over from a dead holder: finish the free it announced,
    /// then rebuild the free index from the block chain.
    /// </summary>
    private void RecoverLocked()
    {
        ref HeapControl control = ref Control;
        if (Volatile.Read(ref control.IntentOp) == HeapControl.IntentFree)
        {
            long offset = control.IntentOffset;
            if (offset >= HeapStart && offset % BlockHeader.Unit == 0 && offset < Volatile.Read(ref _m.Header.Capacity) - BlockHeader.Size)
            {
                ref BlockHeader block = ref _m.Ref<BlockHeader>(offset);
                ulong expected = BlockHeader.Pack(BlockHeader.StateAllocated, control.IntentGeneration);
                if (block.Check == BlockHeader.CheckFor(offset))
                {
                    Interlocked.CompareExchange(ref block.StateGen, BlockHeader.Pack(BlockHeader.StateFree, control.IntentGeneration), expected);
                }
            }

            Volatile.Write(ref control.IntentOp, HeapControl.IntentNone);
        }

        RebuildLocked(OwnerId.None);
        control.Recoveries++;
    }

    [DoesNotReturn]
    private void ThrowCorrupt(long offset, string what) =>
        ThrowHelper.ThrowDamaged(_name, $"the heap block at offset {offset} is damaged: {what}.");

    private static int BlockSizeFor(int size) => Math.Max(BlockHeader.MinBlockSize, ((size + BlockHeader.Unit - 1) & ~(BlockHeader.Unit - 1)) + BlockHeader.Size);

    private static uint NextCachedGeneration(uint generation)
    {
        uint next = generation + 1;
        return (next & GenerationMask) == 0 ? next + 1 : next;
    }
}
