using SharedMemChannels.Diagnostics;
using SharedMemChannels.Platform;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Segments;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

public class SegmentLifecycleTests : SegmentTest
{
    public static TheoryData<SharedMemoryBackend> Backends => [SharedMemoryBackend.Posix, SharedMemoryBackend.SystemV];

    private static SegmentOptions Options(SharedMemoryBackend backend, long capacity = 256 * 1024) => new()
    {
        Backend = backend,
        Capacity = capacity,
        MaxCapacity = backend == SharedMemoryBackend.SystemV ? capacity : 16 * 1024 * 1024,
    };

    [Theory]
    [MemberData(nameof(Backends))]
    public void Create_open_remove_round_trip(SharedMemoryBackend backend)
    {
        string name = NewName();
        Assert.False(SharedSegment.Exists(name));

        using (SharedSegment created = SharedSegment.Create(name, Options(backend)))
        {
            Assert.True(created.IsCreator);
            Assert.Equal(backend, created.Backend);
            Assert.Equal(256 * 1024, created.Capacity);
            Assert.True(SharedSegment.Exists(name));
            Assert.True(SharedSegment.Exists(name, backend));

            using SharedSegment opened = SharedSegment.Open(name, new SegmentOptions { Backend = backend });
            Assert.False(opened.IsCreator);
            Assert.Equal(created.Capacity, opened.Capacity);
            Assert.Equal(created.MaxCapacity, opened.MaxCapacity);

            // Both attachments are in the process table, with different slots.
            List<ProcessSlotInfo> rows = created.Processes.Snapshot();
            Assert.Equal(2, rows.Count);
            Assert.All(rows, r => Assert.Equal(Environment.ProcessId, r.Pid));
            Assert.NotEqual(created.Owner.Slot, opened.Owner.Slot);

            // What one writes, the other reads.
            ShmHandle handle = created.Allocate(100);
            created.GetSpan(handle).Fill(0x5A);
            Assert.True(opened.GetSpan(handle).IndexOfAnyExcept((byte)0x5A) < 0);
        }

        Assert.True(SharedSegment.Exists(name)); // not removed on detach by default
        Assert.True(SharedSegment.Remove(name));
        Assert.False(SharedSegment.Exists(name));
        Assert.False(SharedSegment.Remove(name));
    }

    [Fact]
    public void Open_without_options_finds_a_System_V_segment()
    {
        string name = NewName();
        using SharedSegment created = SharedSegment.Create(name, Options(SharedMemoryBackend.SystemV));
        using SharedSegment opened = SharedSegment.Open(name);
        Assert.Equal(SharedMemoryBackend.SystemV, opened.Backend);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Create_fails_when_the_segment_exists(SharedMemoryBackend backend)
    {
        string name = NewName();
        using SharedSegment first = SharedSegment.Create(name, Options(backend));
        IOException e = Assert.Throws<IOException>(() => SharedSegment.Create(name, Options(backend)));
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Open_fails_when_the_segment_does_not_exist(SharedMemoryBackend backend)
    {
        string name = NewName();
        Assert.Throws<FileNotFoundException>(() => SharedSegment.Open(name, new SegmentOptions { Backend = backend }));
        Assert.Throws<FileNotFoundException>(() => SharedSegment.Open(name));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void OpenOrCreate_creates_once_then_opens(SharedMemoryBackend backend)
    {
        string name = NewName();
        using SharedSegment first = SharedSegment.OpenOrCreate(name, Options(backend));
        using SharedSegment second = SharedSegment.OpenOrCreate(name, Options(backend, capacity: 512 * 1024));
        Assert.True(first.IsCreator);
        Assert.False(second.IsCreator);
        Assert.Equal(256 * 1024, second.Capacity); // the creator's size, not the opener's wish
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void RemoveOnLastDetach_removes_with_the_last_instance(SharedMemoryBackend backend)
    {
        string name = NewName();
        SegmentOptions options = Options(backend);
        options.RemoveOnLastDetach = true;
        SharedSegment first = SharedSegment.Create(name, options);
        SharedSegment second = SharedSegment.Open(name, new SegmentOptions { Backend = backend });
        first.Dispose();
        Assert.True(SharedSegment.Exists(name, backend));
        second.Dispose();
        Assert.False(SharedSegment.Exists(name, backend));
    }

    [Fact]
    public async Task Opening_while_another_attachment_grows_the_segment_never_sees_it_truncated()
    {
        string name = NewName("growrace");
        using SharedSegment grower = SharedSegment.Create(name, new SegmentOptions { Capacity = 64 * 1024, MaxCapacity = 256L * 1024 * 1024 });
        using var stop = new CancellationTokenSource();
        Task growing = Task.Run(() =>
        {
            for (int i = 0; i < 400 && !stop.IsCancellationRequested; i++)
            {
                grower.Allocate(256 * 1024); // each one may double the segment
            }
        });

        int opens = 0;
        while (!growing.IsCompleted)
        {
            using SharedSegment opener = SharedSegment.Open(name);
            Assert.True(opener.Capacity >= 64 * 1024);
            opens++;
        }

        await growing;
        Assert.True(opens > 0);
        Assert.True(SegmentDiagnostics.Inspect(name, SharedMemoryBackend.Posix) is { Status: SegmentStatus.Ready, Heap: not null });
    }

    [Fact]
    public void Dispose_twice_is_harmless_and_use_after_dispose_throws()
    {
        string name = NewName();
        SharedSegment segment = SharedSegment.Create(name, Options(SharedMemoryBackend.Posix));
        ShmHandle handle = segment.Allocate(16);
        segment.Dispose();
        segment.Dispose();
        Assert.True(segment.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => segment.Allocate(16));
        Assert.Throws<ObjectDisposedException>(() => segment.GetSpan(handle));
        Assert.Throws<ObjectDisposedException>(() => segment.Free(handle));
        Assert.Throws<ObjectDisposedException>(() => segment.Capacity);
        Assert.Throws<ObjectDisposedException>(() => segment.GetHeapStatistics());
        Assert.Throws<ObjectDisposedException>(() => segment.Construct<int>("x"));
        Assert.Contains("disposed", segment.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Process_slot_is_freed_on_dispose()
    {
        string name = NewName();
        using SharedSegment keeper = SharedSegment.Create(name, Options(SharedMemoryBackend.Posix));
        SharedSegment visitor = SharedSegment.Open(name);
        Assert.Equal(2, keeper.Processes.Snapshot().Count);
        visitor.Dispose();
        Assert.Single(keeper.Processes.Snapshot());
    }

    [Fact]
    public void Default_mode_is_owner_only_and_an_explicit_mode_is_applied_exactly()
    {
        string privateName = NewName();
        using SharedSegment owned = SharedSegment.Create(privateName, Options(SharedMemoryBackend.Posix));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite,
            File.GetUnixFileMode(PosixSharedMemoryProvider.PathOf(privateName)));

        string groupName = NewName();
        SegmentOptions options = Options(SharedMemoryBackend.Posix);
        options.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        using SharedSegment shared = SharedSegment.Create(groupName, options);
        Assert.Equal(options.UnixFileMode, File.GetUnixFileMode(PosixSharedMemoryProvider.PathOf(groupName)));
    }

    [Fact]
    public void Options_reject_bad_values()
    {
        var options = new SegmentOptions();
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Capacity = SegmentOptions.MinCapacity - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Capacity = SegmentOptions.MaxSupportedCapacity + 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxCapacity = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.Backend = (SharedMemoryBackend)7);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.UnixFileMode = (UnixFileMode)0x800 | UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.UnixFileMode = UnixFileMode.GroupRead);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.OpenTimeout = TimeSpan.FromSeconds(-2));
        options.OpenTimeout = Timeout.InfiniteTimeSpan; // allowed

        string name = NewName();
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedSegment.Create(name, new SegmentOptions { Capacity = 1 << 20, MaxCapacity = 1 << 19 }));
        ArgumentException sysv = Assert.Throws<ArgumentException>(() =>
            SharedSegment.Create(name, new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = 1 << 20, MaxCapacity = 1 << 22 }));
        Assert.Contains("cannot grow", sysv.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => SharedSegment.Create(name, null!));
        Assert.Throws<ArgumentNullException>(() => SharedSegment.OpenOrCreate(name, null!));
        Assert.Throws<ArgumentNullException>(() => SharedSegment.Open(name, null!));
        Assert.False(SharedSegment.Exists(name));
    }

    [Fact]
    public void System_V_defaults_its_maximum_to_its_capacity()
    {
        var options = new SegmentOptions { Backend = SharedMemoryBackend.SystemV, Capacity = 1 << 20 };
        Assert.Equal(1 << 20, options.MaxCapacity);
        Assert.Equal(SegmentOptions.DefaultMaxCapacity, new SegmentOptions().MaxCapacity);
    }

    [Fact]
    public void System_V_key_is_the_documented_hash_of_the_name()
    {
        // FNV-1a 32 of "shmc.a": computed independently.
        uint hash = 2166136261;
        foreach (byte b in "shmc.a"u8)
        {
            hash = (hash ^ b) * 16777619;
        }

        Assert.Equal(unchecked((int)hash), SystemVSharedMemoryProvider.KeyOf("a"));
        Assert.NotEqual(SystemVSharedMemoryProvider.KeyOf("a"), SystemVSharedMemoryProvider.KeyOf("b"));
    }

    [Fact]
    public void List_finds_segments_of_both_backends()
    {
        string posix = NewName();
        string sysv = NewName();
        using SharedSegment a = SharedSegment.Create(posix, Options(SharedMemoryBackend.Posix));
        using SharedSegment b = SharedSegment.Create(sysv, Options(SharedMemoryBackend.SystemV));
        Assert.Contains(posix, PlatformServices.GetProvider(SharedMemoryBackend.Posix).List());
        Assert.Contains(sysv, PlatformServices.GetProvider(SharedMemoryBackend.SystemV).List());
        IReadOnlyList<SegmentReport> reports = SegmentDiagnostics.List();
        Assert.Contains(reports, r => r.Name == posix && r.Backend == SharedMemoryBackend.Posix && r.LiveProcessCount == 1);
        Assert.Contains(reports, r => r.Name == sysv && r.Backend == SharedMemoryBackend.SystemV && r.LiveProcessCount == 1);
    }
}
