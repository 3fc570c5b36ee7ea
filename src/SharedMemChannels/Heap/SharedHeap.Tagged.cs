using SharedMemChannels.Segments;

namespace SharedMemChannels.Heap;

/// <content>Finding blocks by tag: how a channel's destruction finds its records a crash left behind.</content>
internal sealed partial class SharedHeap
{
    /// <summary>
    /// Handles of the allocated blocks tagged <paramref name="tag"/> and owned by <paramref name="owner"/>
    /// (<see cref="OwnerId.None"/>: the segment), found by one walk under the heap lock. The blocks may
    /// change once the lock is released: each handle is validated again when it is used.
    /// </summary>
    public List<ShmHandle> FindAllocated(uint tag, OwnerId owner)
    {
        var found = new List<ShmHandle>();
        using (HoldLock())
        {
            var chain = new BlockChain(_m);
            while (chain.MoveNext())
            {
                if (chain.State == BlockHeader.StateAllocated && chain.Block.Tag == tag && Volatile.Read(ref chain.Block.Owner) == owner.Value)
                {
                    found.Add(ShmHandle.Create(chain.Offset, BlockHeader.GenerationOf(chain.StateGen)));
                }
            }
        }

        return found;
    }
}
