using System.Buffers.Binary;
using System.Reflection;
using System.Runtime.InteropServices;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Tests;

/// <summary>The segment header's descriptor: every field has a named offset, and both ways of reading agree.</summary>
public class SegmentHeaderLayoutTests
{
    public static TheoryData<string> Fields()
    {
        var data = new TheoryData<string>();
        foreach (FieldInfo field in typeof(SegmentHeader).GetFields(BindingFlags.Public | BindingFlags.Instance))
        {
            data.Add(field.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Fields))]
    public void Every_field_sits_at_its_named_offset(string field)
    {
        FieldInfo? constant = typeof(SegmentHeader).GetField(field + "Offset", BindingFlags.Public | BindingFlags.Static);
        Assert.True(constant is { IsLiteral: true }, $"SegmentHeader has no constant {field}Offset");
        Assert.Equal((int)constant!.GetValue(null)!, (int)Marshal.OffsetOf<SegmentHeader>(field));
    }

    [Fact]
    public void The_named_regions_hold_what_the_layout_says()
    {
        Assert.Equal(SegmentHeader.Size, Marshal.SizeOf<SegmentHeader>());
        Assert.Equal(SegmentHeader.MaxCapacityOffset, SegmentHeader.WrittenOnceOffset);
        Assert.True(SegmentHeader.ChecksumOffset + sizeof(ulong) <= SegmentHeader.NameOffset);
        Assert.True(SegmentHeader.NameOffset + SegmentHeader.NameCapacity <= SegmentHeader.MutableOffset);
        Assert.Equal(SegmentHeader.CapacityOffset, SegmentHeader.MutableOffset);
        Assert.Equal(0, SegmentHeader.MutableOffset % 128); // the mutable words have a line of their own
    }

    [Fact]
    public void The_peek_reads_every_field_the_mapped_struct_has()
    {
        var header = new SegmentHeader
        {
            Magic = SegmentHeader.MagicValue, LayoutVersion = 1, HeaderSize = 2, State = 3, Flags = 4,
            MaxCapacity = 5, InitialCapacity = 6, CreatorPid = 7, Mode = 8, CreatorStartTime = 9,
            CreatorPidNamespace = 10, CreatedUnixMs = 11, ProcessTableOffset = 12, ProcessTableSlots = 13,
            HeapControlOffset = 14, HeapStart = 15, NameLength = 16, Backend = 17, Checksum = 18, Capacity = 19,
        };
        byte[] bytes = new byte[SegmentHeader.Size];
        MemoryMarshal.Write(bytes, in header);
        Assert.Equal(header, SegmentHeaderPeek.Read(bytes));
        Assert.Equal(new Platform.ProcessIdentity(7, 9, 10), SegmentHeaderPeek.Creator(bytes));
    }

    [Fact]
    public void The_checksum_covers_written_once_bytes_only()
    {
        byte[] bytes = new byte[SegmentHeader.Size];
        new Random(7).NextBytes(bytes);
        ulong sum = SegmentHeaderPeek.ComputeChecksum(bytes);

        // Neither the state word, the checksum itself, nor the mutable words count.
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(SegmentHeader.StateOffset), 12345);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(SegmentHeader.ChecksumOffset), 42);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(SegmentHeader.CapacityOffset), 1 << 20);
        Assert.Equal(sum, SegmentHeaderPeek.ComputeChecksum(bytes));

        // Every written-once field does.
        foreach (int offset in new[] { SegmentHeader.FlagsOffset, SegmentHeader.CreatorPidOffset, SegmentHeader.BackendOffset, SegmentHeader.NameOffset })
        {
            bytes[offset] ^= 1;
            Assert.NotEqual(sum, SegmentHeaderPeek.ComputeChecksum(bytes));
            bytes[offset] ^= 1;
        }
    }
}
