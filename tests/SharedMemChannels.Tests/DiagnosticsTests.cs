using System.Buffers.Binary;
using SharedMemChannels.Diagnostics;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Segments;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The public inspection API: what it reports on live, dead, damaged, foreign and missing segments, and
/// that reading never attaches. Damage is done to segments nobody is attached to (or that only an idle
/// child holds), so that no test process touches a page the damage took away.
/// </summary>
public class DiagnosticsTests : SegmentTest
{
    private static string PathOf(string name) => PosixSharedMemoryProvider.PathOf(name);

    /// <summary>Creates a POSIX segment and detaches: it stays, with nobody attached.</summary>
    private string DetachedSegment(string tag, long capacity = 256 * 1024, long max = 16 << 20)
    {
        string name = NewName(tag);
        using (SharedSegment.Create(name, new SegmentOptions { Capacity = capacity, MaxCapacity = max }))
        {
        }

        return name;
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/> of the backing object, behind the library's back.</summary>
    private static void Patch(string name, long offset, ReadOnlySpan<byte> bytes)
    {
        using FileStream file = File.Open(PathOf(name), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        file.Position = offset;
        file.Write(bytes);
    }

    private static void Truncate(string name, long length)
    {
        using FileStream file = File.Open(PathOf(name), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        file.SetLength(length);
    }

    [Fact]
    public void A_live_segment_reports_its_header_processes_heap_and_named_objects()
    {
        string name = NewName("diag");
        var options = new SegmentOptions { Capacity = 256 * 1024, MaxCapacity = 4 << 20, RemoveOnLastDetach = true };
        using SharedSegment segment = Track(SharedSegment.Create(name, options));
        ShmPtr<Point> point = segment.Construct<Point>("the-point");
        ShmHandle kept = segment.Allocate(1000);
        segment.Free(segment.Allocate(100)); // leaves a block in this thread's cache

        SegmentReport report = SegmentDiagnostics.Inspect(name);

        Assert.Equal(SegmentStatus.Ready, report.Status);
        Assert.False(report.IsDamaged);
        Assert.Null(report.Problem);
        Assert.Equal(name, report.Name);
        Assert.Equal(SharedMemoryBackend.Posix, report.Backend);
        Assert.Equal(PathOf(name), report.Location);
        Assert.Equal(256 * 1024, report.Capacity);
        Assert.Equal(256 * 1024, report.InitialCapacity);
        Assert.Equal(4 << 20, report.MaxCapacity);
        Assert.Equal(256 * 1024, report.ObjectSize);
        Assert.Equal(2, report.LayoutVersion);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, report.Mode);
        Assert.True(report.RemoveOnLastDetach);
        Assert.Equal(Environment.ProcessId, report.CreatorProcessId);
        Assert.NotNull(report.CreationTime);
        Assert.InRange(report.CreationTime.Value, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1));

        ProcessReport me = Assert.Single(report.Processes);
        Assert.Equal(Environment.ProcessId, me.ProcessId);
        Assert.Equal(ProcessSlotState.Attached, me.State);
        Assert.Equal(ProcessLiveness.Alive, me.Liveness);
        Assert.Equal(segment.Owner.Slot, me.Slot);
        Assert.NotEqual(0UL, me.StartTime);
        Assert.NotNull(me.AttachTime);
        Assert.Equal(1, report.LiveProcessCount);

        HeapStatistics heap = Assert.IsType<HeapStatistics>(report.Heap);
        HeapStatistics truth = segment.GetHeapStatistics();
        Assert.Equal(truth.UsedBytes, heap.UsedBytes);
        Assert.Equal(truth.FreeBytes, heap.FreeBytes);
        Assert.True(heap.AllocatedBlocks >= 2); // the object and the kept block
        Assert.Contains(heap.ThreadCaches, c => c.ProcessId == Environment.ProcessId && c.Blocks > 0);

        NamedObjectInfo named = Assert.Single(report.NamedObjects);
        Assert.Equal("the-point", named.Name);
        Assert.Equal(typeof(Point).FullName, named.TypeName);
        Assert.Equal(8, named.Size);
        Assert.Equal(point.Handle, named.Handle);

        Assert.Contains(SegmentDiagnostics.List(), r => r.Name == name && r.Status == SegmentStatus.Ready);
        segment.Free(kept);
    }

    [Fact]
    public void Inspecting_never_attaches()
    {
        string name = NewName("diag");
        using (SharedSegment.Create(name, new SegmentOptions { RemoveOnLastDetach = true }))
        {
            Assert.Single(SegmentDiagnostics.Inspect(name).Processes);
        }

        // Had inspection attached, the last detach would not have removed the segment.
        Assert.False(SharedSegment.Exists(name));
    }

    [Fact]
    public void A_dead_process_slot_is_reported_dead_and_left_for_the_survivors_to_reclaim()
    {
        using SharedSegment segment = NewSegment("diag");
        ChildProcess victim = Host("hold", segment.Name);
        int slot = int.Parse(Field(victim.WaitForLine("ready"), "slot"), System.Globalization.CultureInfo.InvariantCulture);
        victim.Kill();

        SegmentReport report = SegmentDiagnostics.Inspect(segment.Name, SharedMemoryBackend.Posix);

        Assert.Equal(SegmentStatus.Ready, report.Status);
        ProcessReport dead = Assert.Single(report.Processes, p => p.ProcessId == victim.Pid);
        Assert.Equal(slot, dead.Slot);
        Assert.Equal(ProcessLiveness.Dead, dead.Liveness);
        Assert.Equal(ProcessSlotState.Attached, dead.State);
        Assert.Contains(report.Processes, p => p.ProcessId == Environment.ProcessId && p.Liveness == ProcessLiveness.Alive);
        Assert.Equal(1, report.LiveProcessCount);
        Assert.Equal(1, segment.ReclaimDeadProcesses()); // inspection reclaimed nothing
        Assert.DoesNotContain(SegmentDiagnostics.Inspect(segment.Name).Processes, p => p.ProcessId == victim.Pid);
    }

    [Fact]
    public void A_truncated_segment_is_damaged_and_only_what_the_object_has_is_read()
    {
        string name = NewName("trunc");
        ChildProcess holder = Host("hold", name, "--create", "--capacity", "1048576");
        int pid = int.Parse(Field(holder.WaitForLine("ready"), "pid"), System.Globalization.CultureInfo.InvariantCulture);
        // Not a page multiple: the last, partial page must not be read either.
        Truncate(name, (64 * 1024) + 100);

        SegmentReport report = SegmentDiagnostics.Inspect(name);

        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.True(report.IsDamaged);
        Assert.Contains("truncated", report.Problem, StringComparison.Ordinal);
        Assert.Contains("SIGBUS", report.Problem, StringComparison.Ordinal);
        Assert.Equal((64 * 1024) + 100, report.ObjectSize);
        Assert.Equal(1 << 20, report.Capacity);
        Assert.Equal(pid, report.CreatorProcessId);
        // The process table is within the object: the operator sees who is attached to the broken segment.
        ProcessReport attached = Assert.Single(report.Processes);
        Assert.Equal(pid, attached.ProcessId);
        Assert.Equal(ProcessLiveness.Alive, attached.Liveness);
        Assert.Null(report.Heap);
        Assert.Empty(report.NamedObjects);
        Assert.Contains(SegmentDiagnostics.List(), r => r.Name == name && r.IsDamaged);
    }

    [Fact]
    public void A_segment_truncated_into_its_process_table_or_header_is_damaged()
    {
        string name = DetachedSegment("trunc");
        Truncate(name, 2 * SegmentHeader.Size);
        SegmentReport report = SegmentDiagnostics.Inspect(name);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.Contains("truncated", report.Problem, StringComparison.Ordinal);
        Assert.Equal(256 * 1024, report.Capacity);
        Assert.Empty(report.Processes);

        Truncate(name, 100);
        report = SegmentDiagnostics.Inspect(name);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.Contains("truncated to 100 bytes", report.Problem, StringComparison.Ordinal);
        Assert.Equal(0, report.Capacity);
    }

    [Fact]
    public void An_object_grown_beyond_its_maximum_is_damaged_but_still_read()
    {
        string name = DetachedSegment("grown", capacity: 64 * 1024, max: 128 * 1024);
        Truncate(name, 256 * 1024);
        SegmentReport report = SegmentDiagnostics.Inspect(name);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.Contains("resized", report.Problem, StringComparison.Ordinal);
        Assert.NotNull(report.Heap);
    }

    [Fact]
    public void A_damaged_header_heap_or_process_table_is_reported_not_thrown()
    {
        string checksum = DetachedSegment("hdr");
        Patch(checksum, 40, [0x01, 0x02, 0x03]); // the initial capacity, under the checksum
        SegmentReport report = SegmentDiagnostics.Inspect(checksum);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.Contains("checksum", report.Problem, StringComparison.Ordinal);

        string heap = DetachedSegment("heap");
        Patch(heap, SegmentLayout.HeapStart, [0xFF, 0xFF, 0xFF, 0xFF]); // the first block's check value
        report = SegmentDiagnostics.Inspect(heap);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        Assert.Contains("heap block", report.Problem, StringComparison.Ordinal);
        Assert.Equal(256 * 1024, report.Capacity);

        string table = DetachedSegment("table");
        byte[] slot = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(slot, 7 | (12345L << 32)); // state 7 does not exist
        Patch(table, SegmentLayout.ProcessTableOffset + (3 * SegmentLayout.ProcessSlotSize), slot);
        report = SegmentDiagnostics.Inspect(table);
        Assert.Equal(SegmentStatus.Damaged, report.Status);
        ProcessReport invalid = Assert.Single(report.Processes);
        Assert.Equal(ProcessSlotState.Invalid, invalid.State);
        Assert.Equal(3, invalid.Slot);
        Assert.Equal(12345, invalid.ProcessId);
    }

    [Fact]
    public void Random_damage_anywhere_is_a_report_never_an_exception()
    {
        string name = NewName("fuzz");
        using (SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 256 * 1024, MaxCapacity = 1 << 20 }))
        {
            for (int i = 0; i < 20; i++)
            {
                segment.Construct<Point>($"object-{i}");
                segment.Allocate(48 * (i + 1), ShmOwnership.Segment);
            }
        }

        byte[] pristine = File.ReadAllBytes(PathOf(name));
        var random = new Random(7);
        var seen = new HashSet<SegmentStatus>();
        for (int round = 0; round < 300; round++)
        {
            byte[] damaged = (byte[])pristine.Clone();
            // Mostly past the header (a header byte is just a checksum mismatch): the table, the heap's
            // control block, the first blocks, the directory.
            for (int n = random.Next(1, 9); n > 0; n--)
            {
                int at = random.Next(4) == 0 ? random.Next(damaged.Length) : SegmentHeader.Size + random.Next(64 * 1024);
                damaged[at] = (byte)random.Next(256);
            }

            File.WriteAllBytes(PathOf(name), damaged);
            SegmentReport report = SegmentDiagnostics.Inspect(name, SharedMemoryBackend.Posix);
            Assert.Equal(report.Status == SegmentStatus.Damaged, report.IsDamaged);
            Assert.Equal(report.Status == SegmentStatus.Ready, report.Problem is null);
            seen.Add(report.Status);
        }

        Assert.Contains(SegmentStatus.Damaged, seen);
    }

    [Fact]
    public void Headers_being_written_or_of_another_version_are_reported_as_such()
    {
        string initializing = DetachedSegment("init");
        Patch(initializing, 16, BitConverter.GetBytes(SegmentHeader.StateInitializing));
        SegmentReport report = SegmentDiagnostics.Inspect(initializing);
        Assert.Equal(SegmentStatus.Initializing, report.Status);
        Assert.Equal(256 * 1024, report.Capacity);
        Assert.Empty(report.Processes);

        string other = DetachedSegment("ver");
        Patch(other, 8, BitConverter.GetBytes(7u));
        report = SegmentDiagnostics.Inspect(other);
        Assert.Equal(SegmentStatus.OtherVersion, report.Status);
        Assert.Equal(7, report.LayoutVersion);
        Assert.Contains("version 7", report.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_and_foreign_files_are_reported_as_such()
    {
        string garbage = NewName("garbage");
        byte[] random = new byte[3 * SegmentHeader.Size];
        new Random(42).NextBytes(random);
        File.WriteAllBytes(PathOf(garbage), random);
        SegmentReport report = SegmentDiagnostics.Inspect(garbage);
        Assert.Equal(SegmentStatus.Foreign, report.Status);
        Assert.Equal(random.Length, report.ObjectSize);
        Assert.Equal(0, report.LayoutVersion);

        string text = NewName("text");
        File.WriteAllText(PathOf(text), "a text file, not a segment");
        report = SegmentDiagnostics.Inspect(text);
        Assert.Equal(SegmentStatus.Foreign, report.Status);
        Assert.Contains("not a segment", report.Problem, StringComparison.Ordinal);

        string zeros = NewName("zeros");
        File.WriteAllBytes(PathOf(zeros), new byte[128 * 1024]); // a creator that died after sizing
        Assert.Equal(SegmentStatus.Initializing, SegmentDiagnostics.Inspect(zeros).Status);

        string empty = NewName("empty");
        File.WriteAllBytes(PathOf(empty), []); // a creator that died right after shm_open
        report = SegmentDiagnostics.Inspect(empty);
        Assert.Equal(SegmentStatus.Initializing, report.Status);
        Assert.Equal(0, report.ObjectSize);

        IReadOnlyList<SegmentReport> all = SegmentDiagnostics.List();
        Assert.Contains(all, r => r.Name == garbage && r.Status == SegmentStatus.Foreign);
        Assert.Contains(all, r => r.Name == empty && r.Status == SegmentStatus.Initializing);
    }

    [Fact]
    public void A_System_V_segment_is_found_in_its_backend()
    {
        string name = NewName("sysv");
        using SharedSegment segment = Track(SharedSegment.Create(name, new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = 256 * 1024, MaxCapacity = 256 * 1024 }));
        segment.Construct<Point>("p");

        SegmentReport report = SegmentDiagnostics.Inspect(name);

        Assert.Equal(SharedMemoryBackend.SystemV, report.Backend);
        Assert.Equal(SegmentStatus.Ready, report.Status);
        Assert.Equal(256 * 1024, report.Capacity);
        Assert.Equal(256 * 1024, report.MaxCapacity);
        Assert.Equal(Environment.ProcessId, Assert.Single(report.Processes).ProcessId);
        Assert.Equal("p", Assert.Single(report.NamedObjects).Name);
        Assert.Equal(report.Name, SegmentDiagnostics.Inspect(name, SharedMemoryBackend.SystemV).Name);
        Assert.Throws<FileNotFoundException>(() => SegmentDiagnostics.Inspect(name, SharedMemoryBackend.Posix));
        Assert.Contains(SegmentDiagnostics.List(), r => r.Name == name && r.Backend == SharedMemoryBackend.SystemV);
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("white space")]
    public void A_bad_name_is_an_ArgumentException(string name)
    {
        Assert.ThrowsAny<ArgumentException>(() => SegmentDiagnostics.Inspect(name));
        Assert.ThrowsAny<ArgumentException>(() => SegmentDiagnostics.Inspect(name, SharedMemoryBackend.SystemV));
    }

    [Fact]
    public void A_missing_segment_is_a_FileNotFoundException()
    {
        string name = NewName("missing");
        FileNotFoundException e = Assert.Throws<FileNotFoundException>(() => SegmentDiagnostics.Inspect(name));
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => SegmentDiagnostics.Inspect(name, SharedMemoryBackend.Posix));
        Assert.DoesNotContain(SegmentDiagnostics.List(), r => r.Name == name);
    }
}
