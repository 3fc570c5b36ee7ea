using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// Objects this process did not make: another user's segment planted first, foreign files and
/// System V segments under our names, symbolic links and directories. None is trusted, none is removed.
/// </summary>
public class SecurityTests : SegmentTest
{
    private const int Nobody = 65534;

    public static TheoryData<string> Backends => ["posix", "sysv"];

    private static string[] BackendArgs(string backend) => backend == "sysv" ? ["--backend", "sysv"] : [];

    private static SharedMemoryBackend Kind(string backend) => backend == "sysv" ? SharedMemoryBackend.SystemV : SharedMemoryBackend.Posix;

    private static SegmentOptions Options(string backend) => new()
    {
        Backend = Kind(backend),
        Capacity = 256 * 1024,
        MaxCapacity = backend == "sysv" ? 256 * 1024 : 64 * 1024 * 1024,
        OpenTimeout = TimeSpan.FromSeconds(30),
    };

    private static string PathOf(string name) => PosixSharedMemoryProvider.PathOf(name);

    private static bool CanSwitchUser() =>
        LibC.GetEuid() == 0 && (File.Exists("/usr/bin/setpriv") || File.Exists("/bin/setpriv"));

    // ---- Defect 1: a segment made in advance by another user is not trusted. ----

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void A_segment_another_user_made_first_is_refused_by_every_entry_point(string backend)
    {
        Skip.IfNot(CanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("planted");
        ChildProcess planter = HostAsUser(Nobody, Nobody, ["create-shared", name, .. BackendArgs(backend)]);
        Assert.Equal("True", Field(planter.WaitForLine("ready"), "created"));

        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.OpenOrCreate(name, Options(backend)).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Open(name, Options(backend)).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Open(name).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Create(name, Options(backend)).Dispose());
        Assert.True(SharedSegment.Exists(name, Kind(backend)));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Another_users_segment_opens_only_with_AllowForeignOwner(string backend)
    {
        Skip.IfNot(CanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("planted");
        ChildProcess planter = HostAsUser(Nobody, Nobody, ["create-shared", name, .. BackendArgs(backend)]);
        planter.WaitForLine("ready");

        SegmentOptions options = Options(backend);
        options.AllowForeignOwner = true;
        using (SharedSegment segment = SharedSegment.OpenOrCreate(name, options))
        {
            Assert.False(segment.IsCreator);
        }

        using (SharedSegment segment = SharedSegment.Open(name, options))
        {
            Assert.Equal(Kind(backend), segment.Backend);
        }

        Assert.Throws<IOException>(() => SharedSegment.Create(name, options).Dispose());
        planter.Send("exit");
        Assert.Equal(0, planter.Finish());
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Another_users_dead_creator_leftover_is_refused_and_never_removed(string backend)
    {
        Skip.IfNot(CanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("planted");
        ChildProcess creator = HostAsUser(Nobody, Nobody, ["create-stall", name, "--capacity", "262144", .. BackendArgs(backend)]);
        creator.WaitForLine("initializing");
        creator.Kill();

        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.OpenOrCreate(name, Options(backend)).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Create(name, Options(backend)).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Open(name, Options(backend)).Dispose());
        Assert.True(SharedSegment.Exists(name, Kind(backend)));

        // Opting in to foreign owners allows attaching to them, never removing what they left.
        SegmentOptions options = Options(backend);
        options.AllowForeignOwner = true;
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, options).Dispose());
        Assert.Contains("another user", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, options).Dispose());
        Assert.True(SharedSegment.Exists(name, Kind(backend)));
    }

    [SkippableFact]
    public void A_zero_filled_file_of_another_user_is_not_replaced()
    {
        Skip.IfNot(CanSwitchUser(), "needs root to give a file to another user");
        string name = NewName("planted");
        string path = PathOf(name);
        File.WriteAllBytes(path, new byte[256 * 1024]); // looks like a creator that died before its header
        File.SetUnixFileMode(path, (UnixFileMode)0x1B6);
        Assert.Equal(0, Chown(path, Nobody, Nobody));

        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Create(name, Options("posix")).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.OpenOrCreate(name, Options("posix")).Dispose());
        Assert.Throws<UnauthorizedAccessException>(() => SharedSegment.Open(name).Dispose());
        Assert.Equal(256 * 1024, new FileInfo(path).Length);
    }

    // ---- Defect 2: only a leftover of ours is ever removed, and never by Open. ----

    [Theory]
    [InlineData(4096)]        // a first page of zeros and more after it: no size our creator makes
    [InlineData(256 * 1024)]  // a size it could make, but data beyond a header it never wrote
    public void A_foreign_file_whose_first_page_is_zero_is_left_alone(int size)
    {
        string name = NewName("zeropage");
        byte[] content = new byte[size + 4096];
        new Random(1).NextBytes(content.AsSpan(4096));
        File.WriteAllBytes(PathOf(name), content);

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name).Dispose());
        Assert.Contains("not a SharedMemChannels segment", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, Options("posix")).Dispose());
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, Options("posix")).Dispose());
        Assert.Equal(content, File.ReadAllBytes(PathOf(name)));
    }

    [Theory]
    [InlineData(1000)]        // smaller than a header
    [InlineData(100_000)]     // not a whole number of pages
    [InlineData(32 * 1024)]   // pages, but less than the smallest segment
    public void A_zero_filled_file_of_a_size_our_creator_never_makes_is_not_a_leftover(int size)
    {
        string name = NewName("zerosize");
        File.WriteAllBytes(PathOf(name), new byte[size]);

        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name).Dispose());
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, Options("posix")).Dispose());
        Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, Options("posix")).Dispose());
        Assert.Equal(size, new FileInfo(PathOf(name)).Length);
    }

    [Fact]
    public void Open_reports_a_dead_creators_zero_filled_leftover_and_leaves_it()
    {
        string name = NewName("zeroleft");
        File.WriteAllBytes(PathOf(name), new byte[256 * 1024]); // sized, header not yet written

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name).Dispose());
        Assert.Contains("creator died", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(PathOf(name)));

        using SharedSegment segment = Track(SharedSegment.OpenOrCreate(name, Options("posix")));
        Assert.True(segment.IsCreator);
    }

    [Fact]
    public void Open_reports_an_empty_leftover_and_leaves_it()
    {
        string name = NewName("emptyleft");
        File.WriteAllBytes(PathOf(name), []);

        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name).Dispose());
        Assert.Contains("creator died", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(PathOf(name)));
    }

    [Fact]
    public void A_foreign_System_V_segment_under_our_key_is_left_alone()
    {
        string name = NewName("svforeign");
        int id = MakeRawSystemVSegment(name, 256 * 1024, dataAt: 8192);
        try
        {
            var options = Options("sysv");
            options.OpenTimeout = TimeSpan.FromSeconds(30);
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name, options).Dispose());
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, options).Dispose());
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, options).Dispose());
            Assert.Equal(id, LibC.ShmGet(SystemVSharedMemoryProvider.KeyOf(name), 0, 0));
        }
        finally
        {
            RemoveRawSystemVSegment(id);
        }
    }

    // ---- Defect 4: what Exists says agrees with what Open sees. ----

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Another_users_owner_only_segment_exists_and_is_refused_not_missing(string backend)
    {
        Skip.IfNot(CanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("private");
        using SharedSegment segment = Track(SharedSegment.Create(name, Options(backend)));
        ChildProcess stranger = HostAsUser(Nobody, Nobody, ["probe", name, .. BackendArgs(backend)]);
        string exists = stranger.WaitForLine("exists");
        Assert.Equal("True", Field(exists, "any"));
        Assert.Equal("True", Field(exists, "backend"));
        Assert.Equal("UnauthorizedAccessException", Field(stranger.WaitForLine("open "), "result"));
        Assert.Equal("UnauthorizedAccessException", Field(stranger.WaitForLine("open-backend"), "result"));
        Assert.Equal("UnauthorizedAccessException", Field(stranger.WaitForLine("remove"), "result"));
        Assert.Equal(0, stranger.WaitForExit());
        Assert.True(SharedSegment.Exists(name, Kind(backend)));
    }

    public static TheoryData<string> NotObjects => ["link-to-file", "dangling-link", "link-to-directory", "directory"];

    [Theory]
    [MemberData(nameof(NotObjects))]
    public void A_symbolic_link_or_directory_of_the_name_is_not_a_segment(string what)
    {
        string name = NewName("link");
        string path = PathOf(name);
        string decoy = Path.Combine(Path.GetTempPath(), TestRun.Name("decoy"));
        string dangling = PathOf(NewName("target"));
        byte[] decoyContent = "a file the link points at"u8.ToArray();
        File.WriteAllBytes(decoy, decoyContent);
        try
        {
            switch (what)
            {
                case "link-to-file": File.CreateSymbolicLink(path, decoy); break;
                case "dangling-link": File.CreateSymbolicLink(path, dangling); break;
                case "link-to-directory": File.CreateSymbolicLink(path, Path.GetTempPath()); break;
                default: Directory.CreateDirectory(path); break;
            }

            Assert.False(SharedSegment.Exists(name));
            Assert.False(SharedSegment.Exists(name, SharedMemoryBackend.Posix));
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name).Dispose());
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name, Options("posix")).Dispose());
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.OpenOrCreate(name, Options("posix")).Dispose());
            Assert.Throws<InvalidSegmentException>(() => SharedSegment.Create(name, Options("posix")).Dispose());
            Assert.False(SharedSegment.Remove(name, SharedMemoryBackend.Posix));

            // Nothing followed, nothing removed.
            Assert.True(Path.Exists(path) || new FileInfo(path).LinkTarget is not null);
            Assert.Equal(decoyContent, File.ReadAllBytes(decoy));
            Assert.False(Path.Exists(dangling));
            Assert.False(File.Exists(dangling) || new FileInfo(dangling).LinkTarget is not null);
        }
        finally
        {
            File.Delete(decoy);
        }
    }

    /// <summary>A System V segment under the key of <paramref name="name"/> with no header and some data: another program's.</summary>
    private static unsafe int MakeRawSystemVSegment(string name, int size, int dataAt)
    {
        int id = LibC.ShmGet(SystemVSharedMemoryProvider.KeyOf(name), (nuint)size, LibC.IPC_CREAT | LibC.IPC_EXCL | 0x180);
        Assert.True(id >= 0, "shmget failed");
        nint address = LibC.ShmAt(id, 0, 0);
        Assert.NotEqual(-1, address);
        new Span<byte>((byte*)address + dataAt, 16).Fill(0x5A);
        LibC.ShmDt(address);
        return id;
    }

    private static unsafe void RemoveRawSystemVSegment(int id) => LibC.ShmCtl(id, LibC.IPC_RMID, out _);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown(string path, int uid, int gid);
}
