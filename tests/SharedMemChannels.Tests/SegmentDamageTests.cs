using System.Buffers.Binary;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Segments;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>Foreign, damaged and leftover objects, and bad names: clear exceptions, never a crash.</summary>
public class SegmentDamageTests : SegmentTest
{
    private static string PathOf(string name) => PosixSharedMemoryProvider.PathOf(name);

    private static SegmentOptions Small => new() { Capacity = 128 * 1024, MaxCapacity = 1024 * 1024 };

    /// <summary>Makes a segment, detaches, and lets the test change its bytes as a file.</summary>
    private string MakeDetachedSegment()
    {
        string name = NewName("dmg");
        using (SharedSegment.Create(name, Small))
        {
        }

        return name;
    }

    private static void Patch(string name, int offset, ReadOnlySpan<byte> bytes)
    {
        using FileStream file = File.Open(PathOf(name), FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        file.Write(bytes);
    }

    [Fact]
    public void A_file_of_garbage_is_not_a_segment_and_is_left_alone()
    {
        string name = NewName("garbage");
        byte[] garbage = new byte[8192];
        new Random(42).NextBytes(garbage);
        File.WriteAllBytes(PathOf(name), garbage);

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains("not a SharedMemChannels segment", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, Small));
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, Small));
        Assert.Equal(garbage, File.ReadAllBytes(PathOf(name)));
    }

    [Fact]
    public void A_small_file_with_content_is_not_a_segment()
    {
        string name = NewName("garbage");
        File.WriteAllText(PathOf(name), "hello, I am a text file");
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.True(File.Exists(PathOf(name)));
    }

    [Fact]
    public void A_segment_of_another_layout_version_is_refused()
    {
        string name = MakeDetachedSegment();
        Patch(name, 8, BitConverter.GetBytes(99u));
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains("layout version 99", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, Small));
    }

    [Fact]
    public void A_truncated_segment_is_refused()
    {
        string name = MakeDetachedSegment();
        using (FileStream file = File.Open(PathOf(name), FileMode.Open))
        {
            file.SetLength(64 * 1024);
        }

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_segment_resized_beyond_its_maximum_is_refused()
    {
        string name = MakeDetachedSegment();
        using (FileStream file = File.Open(PathOf(name), FileMode.Open))
        {
            file.SetLength(2 * 1024 * 1024);
        }

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains("resized", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(12, "header claims")]       // header size
    [InlineData(32, "damaged")]             // max capacity, covered by the checksum
    [InlineData(SegmentHeader.NameOffset, "damaged")] // a byte of the stored name
    [InlineData(104, "damaged")]            // the checksum itself
    public void A_damaged_header_is_refused(int offset, string expected)
    {
        string name = MakeDetachedSegment();
        byte[] header = File.ReadAllBytes(PathOf(name)).AsSpan(0, SegmentHeader.Size).ToArray();
        header[offset] ^= 0x40;
        Patch(name, offset, header.AsSpan(offset, 1));
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lying_capacity_word_is_an_exception_not_a_fault()
    {
        string name = NewName("lie");
        using SharedSegment segment = SharedSegment.Create(name, Small);
        long truth = segment.Capacity;
        // A hostile peer claims the segment is larger than the object behind it.
        Volatile.Write(ref segment.Memory.Header.Capacity, truth * 4);
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => segment.Memory.Span(truth + 100, 16).Clear());
        Assert.Contains("backing object", e.Message, StringComparison.Ordinal);
        // Beyond the reservation is refused outright.
        Assert.Throws<InvalidSegmentException>(() => segment.Memory.Span(segment.MaxCapacity, 1));
        Assert.Throws<InvalidSegmentException>(() => segment.Memory.Span(-8, 4));
        Assert.Throws<InvalidSegmentException>(() => segment.Memory.Span(long.MaxValue - 2, 4));
        Volatile.Write(ref segment.Memory.Header.Capacity, truth);
    }

    [Fact]
    public void An_empty_leftover_is_replaced_by_OpenOrCreate()
    {
        string name = NewName("empty");
        File.WriteAllBytes(PathOf(name), []); // a creator that died right after shm_open
        using SharedSegment segment = SharedSegment.OpenOrCreate(name, Small);
        Assert.True(segment.IsCreator);
    }

    [Fact]
    public void A_zero_filled_leftover_is_replaced_by_Create()
    {
        string name = NewName("zero");
        File.WriteAllBytes(PathOf(name), new byte[128 * 1024]); // died after sizing, before the header
        using SharedSegment segment = SharedSegment.Create(name, Small);
        Assert.True(segment.IsCreator);
    }

    [Fact]
    public void An_initializing_header_without_a_live_creator_is_reported_by_Open_and_replaced_by_OpenOrCreate()
    {
        string name = MakeDetachedSegment();
        Patch(name, SegmentHeader.StateOffset, BitConverter.GetBytes(SegmentHeader.StateInitializing));
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name));
        Assert.Contains("creator died", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(PathOf(name))); // Open never removes anything

        using SharedSegment segment = SharedSegment.OpenOrCreate(name, Small);
        Assert.True(segment.IsCreator);
    }

    [Fact]
    public void A_System_V_key_collision_is_detected()
    {
        // Names carry this run's prefix, so the end-of-run cleanup removes them whatever happens.
        (string a, string b) = CollidingNames();
        Assert.Equal(SystemVSharedMemoryProvider.KeyOf(a), SystemVSharedMemoryProvider.KeyOf(b));
        var sysv = new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = 64 * 1024 };
        try
        {
            using SharedSegment segment = SharedSegment.Create(a, sysv);
            IOException created = Assert.Throws<IOException>(() => SharedSegment.Create(b, sysv));
            Assert.Contains("collision", created.Message, StringComparison.Ordinal);
            IOException opened = Assert.Throws<IOException>(() => SharedSegment.Open(b, new SegmentOptions { Backend = SharedMemoryBackend.SystemV }));
            Assert.Contains("collision", opened.Message, StringComparison.Ordinal);
            Assert.False(SharedSegment.Exists(b, SharedMemoryBackend.SystemV));
            Assert.False(SharedSegment.Remove(b, SharedMemoryBackend.SystemV)); // never removes the other's segment
            Assert.True(SharedSegment.Exists(a, SharedMemoryBackend.SystemV));
        }
        finally
        {
            SharedSegment.Remove(a, SharedMemoryBackend.SystemV);
        }
    }

    /// <summary>Two names with the same System V key, found by the birthday bound among generated names.</summary>
    private static (string, string) CollidingNames()
    {
        var seen = new Dictionary<int, string>();
        string prefix = TestRun.Prefix + "k";
        for (int i = 0; ; i++)
        {
            string name = prefix + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            int key = SystemVSharedMemoryProvider.KeyOf(name);
            if (seen.TryGetValue(key, out string? other))
            {
                return (other, name);
            }

            seen.Add(key, name);
        }
    }

    public static TheoryData<string> BadNames =>
    [
        "",
        "../escape",
        "a/b",
        "/abs",
        "nul\0inside",
        new string('n', SharedName.MaxLength + 1),
        "space name",
        "ünicode",
        "semi;colon",
        "new\nline",
    ];

    [Theory]
    [MemberData(nameof(BadNames))]
    public void Bad_names_are_argument_exceptions_everywhere(string name)
    {
        Assert.Throws<ArgumentException>(() => SharedSegment.Create(name, Small));
        Assert.Throws<ArgumentException>(() => SharedSegment.Open(name));
        Assert.Throws<ArgumentException>(() => SharedSegment.Open(name, Small));
        Assert.Throws<ArgumentException>(() => SharedSegment.OpenOrCreate(name, Small));
        Assert.Throws<ArgumentException>(() => SharedSegment.Exists(name));
        Assert.Throws<ArgumentException>(() => SharedSegment.Remove(name));
        Assert.False(SharedName.IsValid(name));

        string segmentName = NewName("names");
        using SharedSegment segment = SharedSegment.Create(segmentName, Small);
        Assert.Throws<ArgumentException>(() => segment.Construct<int>(name));
        Assert.Throws<ArgumentException>(() => segment.TryFind<int>(name, out _));
        Assert.Throws<ArgumentException>(() => segment.Destroy(name));
        Assert.False(File.Exists("/dev/escape"));
        Assert.False(File.Exists("/escape"));
    }

    [Fact]
    public void Null_names_are_argument_null_exceptions()
    {
        Assert.Throws<ArgumentNullException>(() => SharedSegment.Create(null!, Small));
        Assert.Throws<ArgumentNullException>(() => SharedSegment.Open(null!));
        Assert.Throws<ArgumentNullException>(() => SharedSegment.Exists(null!));
        Assert.False(SharedName.IsValid(null));
    }

    [Fact]
    public void The_longest_valid_name_works()
    {
        string name = (TestRun.Prefix + new string('x', SharedName.MaxLength))[..SharedName.MaxLength];
        try
        {
            using SharedSegment segment = SharedSegment.Create(name, Small);
            Assert.True(SharedSegment.Exists(name));
            segment.Construct<int>(new string('o', SharedName.MaxLength));
        }
        finally
        {
            SharedSegment.Remove(name);
        }
    }

    [Fact]
    public void A_capacity_larger_than_dev_shm_fails_and_leaves_nothing()
    {
        long total = new DriveInfo("/dev/shm").TotalSize;
        string name = NewName("huge");
        long capacity = total + (1L << 30);
        OutOfSharedMemoryException e = Assert.Throws<OutOfSharedMemoryException>(() =>
            SharedSegment.Create(name, new SegmentOptions { Capacity = capacity, MaxCapacity = capacity }));
        Assert.Contains("/dev/shm", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(PathOf(name)));
        Assert.False(SharedSegment.Exists(name));
    }

    [Fact]
    public void A_header_being_written_is_initializing_whatever_its_version_word_says()
    {
        byte[] header = new byte[SegmentHeader.Size];
        Assert.Equal(HeaderKind.Empty, SegmentHeaderPeek.Classify(header));
        BinaryPrimitives.WriteUInt64LittleEndian(header, SegmentHeader.MagicValue); // the creator's first store
        Assert.Equal(HeaderKind.Initializing, SegmentHeaderPeek.Classify(header));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 7);
        Assert.Equal(HeaderKind.Initializing, SegmentHeaderPeek.Classify(header));
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), SegmentHeader.StateReady);
        Assert.Equal(HeaderKind.OtherVersion, SegmentHeaderPeek.Classify(header));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), SegmentHeader.CurrentVersion);
        Assert.Equal(HeaderKind.Ready, SegmentHeaderPeek.Classify(header));
        header[0] ^= 1;
        Assert.Equal(HeaderKind.Foreign, SegmentHeaderPeek.Classify(header));
        Assert.Equal(HeaderKind.Empty, SegmentHeaderPeek.Classify(header.AsSpan(0, 100)));
    }

    [Fact]
    public void Header_layout_offsets_are_what_the_descriptor_says()
    {
        Assert.Equal(SegmentHeader.Size, System.Runtime.CompilerServices.Unsafe.SizeOf<SegmentHeader>());
        Assert.Equal(16, (int)System.Runtime.InteropServices.Marshal.OffsetOf<SegmentHeader>(nameof(SegmentHeader.State)));
        Assert.Equal(1024, (int)System.Runtime.InteropServices.Marshal.OffsetOf<SegmentHeader>(nameof(SegmentHeader.Capacity)));
        Assert.Equal(SegmentLayout.ProcessSlotSize, System.Runtime.CompilerServices.Unsafe.SizeOf<ProcessSlot>());
        Assert.True(SegmentLayout.HeapStart % 64 == 0);
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, SegmentHeader.MagicValue);
        Assert.Equal("SHMCSEG1", System.Text.Encoding.ASCII.GetString(bytes));
    }
}
