using SharedMemChannels.Heap;

namespace SharedMemChannels.Tests;

/// <summary>The heap's size arithmetic (TLSF lists, cache size classes): no segment, so no backend.</summary>
public class HeapSizeClassTests
{
    [Fact]
    public void Tlsf_mapping_finds_lists_whose_blocks_are_large_enough()
    {
        for (long size = BlockHeader.MinBlockSize; size < 1L << 34; size += Math.Max(16, size / 7) & ~15L)
        {
            (int fl, int sl) = HeapControl.MappingSearch(size);
            Assert.True(fl < HeapControl.FlCount && sl < HeapControl.SlCount);
            Assert.True(SmallestSizeIn(fl, sl) >= size, $"list ({fl},{sl}) may hold blocks smaller than {size}");
            Assert.Equal((fl, sl), HeapControl.MappingInsert(SmallestSizeIn(fl, sl)));
            // The list is the first such: the one before it may hold smaller blocks.
            (int ifl, int isl) = HeapControl.MappingInsert(size);
            Assert.True(fl > ifl || (fl == ifl && sl >= isl));
        }
    }

    private static long SmallestSizeIn(int fl, int sl) =>
        fl == 0
            ? sl * 16L
            : (1L << (fl + HeapControl.FlShift - 1)) + (sl * (1L << (fl + HeapControl.FlShift - 1 - HeapControl.SlLog2)));

    [Fact]
    public void Size_classes_round_up_for_allocation_and_down_for_freed_blocks()
    {
        for (int blockSize = BlockHeader.MinBlockSize; blockSize <= SizeClasses.MaxBlockSize; blockSize += 16)
        {
            int up = SizeClasses.ForAllocation(blockSize);
            Assert.True(SizeClasses.BlockSize(up) >= blockSize);
            Assert.True(up == 0 || SizeClasses.BlockSize(up - 1) < blockSize);
            int down = SizeClasses.ForFreedBlock(blockSize);
            Assert.True(SizeClasses.BlockSize(down) <= blockSize);
        }

        Assert.Equal(-1, SizeClasses.ForFreedBlock(SizeClasses.MaxBlockSize + 16));
    }
}
