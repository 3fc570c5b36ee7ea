using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Segments;
using Xunit;

namespace SharedMemChannels.Tests;

/// <summary>
/// Every shared layout is described by one descriptor type; these tests hold each descriptor to the
/// layout constants: sizes, no overlapping or misaligned fields, parts that fit their regions, and
/// words written by different parties on lines of their own.
/// </summary>
public sealed class LayoutTests
{
    public static TheoryData<Type, int> Descriptors => new()
    {
        { typeof(SegmentHeader), SegmentHeader.Size },
        { typeof(ProcessSlot), SegmentLayout.ProcessSlotSize },
        { typeof(HeapControl), 512 },
        { typeof(BlockHeader), BlockHeader.Size },
        { typeof(DirectoryControl), DirectoryControl.Size },
        { typeof(DirectoryTableHeader), DirectoryLayout.TableHeaderSize },
        { typeof(DirectoryEntry), DirectoryLayout.EntrySize },
        { typeof(ObjectHeader), ObjectHeader.Size },
        { typeof(ContainerStorage.Header), ContainerStorage.HeaderSize },
    };

    [Theory]
    [MemberData(nameof(Descriptors))]
    public void Each_descriptor_has_its_declared_size_and_naturally_aligned_fields_that_do_not_overlap(Type descriptor, int size)
    {
        Assert.Equal(size, SizeOf(descriptor));
        Assert.Equal(size, Marshal.SizeOf(descriptor));
        int end = 0;
        foreach ((string name, int offset, int fieldSize) in Fields(descriptor))
        {
            Assert.True(offset >= end, $"{descriptor.Name}.{name} at {offset} overlaps the field before it (which ends at {end}).");
            Assert.True(offset % fieldSize == 0, $"{descriptor.Name}.{name} at {offset} is not aligned to its {fieldSize} bytes.");
            end = offset + fieldSize;
        }

        Assert.True(end <= size, $"{descriptor.Name}'s fields end at {end}, beyond its {size} bytes.");
    }

    [Fact]
    public void The_parts_of_a_segment_follow_each_other_and_each_fits_its_region()
    {
        Assert.Equal(SegmentHeader.Size, SegmentLayout.ProcessTableOffset);
        Assert.Equal(SegmentLayout.ProcessTableOffset + (SegmentLayout.ProcessTableSlots * SegmentLayout.ProcessSlotSize), SegmentLayout.HeapControlOffset);
        Assert.Equal(SegmentLayout.HeapControlOffset + SegmentLayout.HeapControlSize, SegmentLayout.DirectoryControlOffset);
        Assert.Equal(SegmentLayout.DirectoryControlOffset + SegmentLayout.DirectoryControlSize, SegmentLayout.HeapStart);

        // The heap control block with its bitmaps and list heads fits its region; so does the directory's.
        Assert.True(HeapControl.EndOffset <= SegmentLayout.HeapControlSize, $"heap control ends at {HeapControl.EndOffset}");
        Assert.True(SizeOf(typeof(HeapControl)) <= HeapControl.SlBitmapsOffset);
        Assert.True(HeapControl.SlBitmapsOffset + (HeapControl.FlCount * sizeof(uint)) <= HeapControl.HeadsOffset);
        Assert.True(DirectoryControl.Size <= SegmentLayout.DirectoryControlSize);

        // Every region starts on a cache line, and the heap on a page and a block unit.
        foreach (int offset in new[] { SegmentLayout.ProcessTableOffset, SegmentLayout.HeapControlOffset, SegmentLayout.DirectoryControlOffset, SegmentLayout.HeapStart })
        {
            Assert.Equal(0, offset % SegmentLayout.CacheLine);
        }

        Assert.Equal(0, SegmentLayout.HeapStart % 4096);
        Assert.Equal(0, SegmentLayout.HeapStart % BlockHeader.Unit);
        Assert.Equal(0, BlockHeader.MinBlockSize % BlockHeader.Unit);
        Assert.True(SegmentHeader.NameOffset + SegmentHeader.NameCapacity <= SegmentHeader.Size);
    }

    [Theory]
    [InlineData(typeof(HeapControl), nameof(HeapControl.Lock))]
    [InlineData(typeof(DirectoryControl), nameof(DirectoryControl.Lock))]
    [InlineData(typeof(SegmentHeader), nameof(SegmentHeader.Capacity))]
    public void Words_written_by_different_parties_have_a_line_of_their_own(Type descriptor, string hotWord)
    {
        var fields = Fields(descriptor).ToList();
        int hot = fields.Single(f => f.Name == hotWord).Offset;
        int line = hot / SegmentLayout.CacheLine;
        Assert.Equal(0, hot % SegmentLayout.CacheLine);
        Assert.DoesNotContain(fields, f => f.Name != hotWord && (f.Offset / SegmentLayout.CacheLine) == line);
    }

    [Fact]
    public void The_directory_entry_formula_places_slots_after_the_table_header_one_entry_apart()
    {
        Assert.Equal(1000 + DirectoryLayout.TableHeaderSize, DirectoryLayout.EntryOffset(1000, 0));
        Assert.Equal(DirectoryLayout.EntrySize, DirectoryLayout.EntryOffset(0, 5) - DirectoryLayout.EntryOffset(0, 4));
        Assert.Equal(DirectoryLayout.EntryOffset(0, 16), DirectoryLayout.TableSize(16));
        Assert.Equal(0, DirectoryLayout.ValueOffsetFor(5, 7) % DirectoryLayout.ValueAlignment);
        Assert.True(DirectoryLayout.ValueOffsetFor(5, 7) >= ObjectHeader.Size + 12);
    }

    private static int SizeOf(Type type) => (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;

    private static IEnumerable<(string Name, int Offset, int Size)> Fields(Type descriptor) =>
        descriptor.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .Select(f => (f.Name, f.GetCustomAttribute<FieldOffsetAttribute>()!.Value, SizeOf(f.FieldType)))
            .OrderBy(f => f.Value);
}
