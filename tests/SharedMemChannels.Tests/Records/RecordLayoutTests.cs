using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharedMemChannels.Channels;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Records;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>The record header's descriptor, the channel control block's owned-handle fields, and the inspection of record channels.</summary>
public sealed class RecordLayoutTests : SegmentTest
{
    [Fact]
    public void The_record_header_is_32_aligned_bytes_and_keeps_the_payload_16_byte_aligned()
    {
        Assert.Equal(RecordHeader.Size, Unsafe.SizeOf<RecordHeader>());
        Assert.Equal(0, RecordHeader.Size % 16);
        int end = 0;
        foreach (FieldInfo field in typeof(RecordHeader).GetFields(BindingFlags.Instance | BindingFlags.Public).OrderBy(f => f.GetCustomAttribute<FieldOffsetAttribute>()!.Value))
        {
            int offset = field.GetCustomAttribute<FieldOffsetAttribute>()!.Value;
            int size = Marshal.SizeOf(field.FieldType);
            Assert.True(offset >= end, $"{field.Name} overlaps");
            Assert.Equal(0, offset % size);
            end = offset + size;
        }

        Assert.True(end <= RecordHeader.Size);
        Assert.Equal(24, Unsafe.SizeOf<RecordSlot>());
        Assert.Equal(RecordHeader.StateWriter, RecordHeader.StateOf(RecordHeader.Word(12345, RecordHeader.StateWriter)));
        Assert.Equal(12345UL, RecordHeader.TicketOf(RecordHeader.Word(12345, RecordHeader.StateQueued)));
    }

    [Fact]
    public void The_owned_handle_fields_of_the_control_block_fit_line_0_and_line_1_without_touching_the_leases_or_the_completion_line()
    {
        int Offset(string name) => typeof(ChannelControl).GetField(name)!.GetCustomAttribute<FieldOffsetAttribute>()!.Value;
        Assert.Equal(2, ChannelControl.CurrentVersion);
        foreach (string field in new[] { nameof(ChannelControl.ElementKind), nameof(ChannelControl.MaxRecordSize), nameof(ChannelControl.OwnedHandleCount), nameof(ChannelControl.ChannelId) })
        {
            Assert.True(Offset(field) > Offset(nameof(ChannelControl.ElementTypeNameLength)) && Offset(field) < 128, field);
        }

        Assert.True(ChannelControl.OwnedHandleOffsetsOffset >= Offset(nameof(ChannelControl.WriterLease)) + sizeof(uint));
        Assert.True(ChannelControl.OwnedHandleOffsetsOffset + (ChannelControl.MaxOwnedHandles * sizeof(int)) <= ChannelControl.CompletionSequenceOffset);
        Assert.Equal(1000 + ChannelControl.OwnedHandleOffsetsOffset + 12, ChannelLayout.OwnedHandleOffset(1000, 3));
    }

    [Fact]
    public void The_inspection_reports_a_record_channel_as_records()
    {
        SharedSegment segment = NewSegment("inspect");
        using SharedRecordChannel records = Track(SharedChannel.CreateRecords(segment, "recs", new SharedChannelOptions(4) { MaxRecordSize = 5000 }));
        using SharedChannel<long> plain = Track(SharedChannel.CreateBounded<long>(segment, "longs", new SharedChannelOptions(4)));
        Assert.True(records.Writer.TryWrite(records.Writer.Allocate(10)));
        var reports = SegmentDiagnostics.Inspect(segment.Name).Channels.ToDictionary(c => c.Name);
        Assert.Equal("records", reports["recs"].ElementKind);
        Assert.Equal(5000, reports["recs"].MaxRecordSize);
        Assert.Equal(1, reports["recs"].OwnedHandles);
        Assert.Equal(1, reports["recs"].Count);
        Assert.Equal("unmanaged", reports["longs"].ElementKind);
        Assert.Equal(0, reports["longs"].OwnedHandles);
    }
}
