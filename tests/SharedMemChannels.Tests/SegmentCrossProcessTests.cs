using System.Globalization;
using SharedMemChannels.Platform;
using SharedMemChannels.Segments;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>Segment behaviour with real child processes: races, crashes, growth, permissions.</summary>
public class SegmentCrossProcessTests : SegmentTest
{
    public static TheoryData<string> Backends => ["posix", "sysv"];

    private static string[] BackendArgs(string backend) => backend == "sysv" ? ["--backend", "sysv"] : [];

    private static SegmentOptions Options(string backend, bool removeOnLastDetach = false) => new()
    {
        Backend = backend == "sysv" ? SharedMemoryBackend.SystemV : SharedMemoryBackend.Posix,
        Capacity = 256 * 1024,
        MaxCapacity = backend == "sysv" ? 256 * 1024 : 64 * 1024 * 1024,
        RemoveOnLastDetach = removeOnLastDetach,
    };

    [Theory]
    [MemberData(nameof(Backends))]
    public void Eight_processes_racing_OpenOrCreate_create_exactly_once(string backend)
    {
        string name = NewName("race");
        var racers = Enumerable.Range(0, 8)
            .Select(_ => Host(["race", name, "--capacity", "262144", .. BackendArgs(backend)]))
            .ToList();
        foreach (ChildProcess racer in racers)
        {
            racer.WaitForLine("waiting");
        }

        foreach (ChildProcess racer in racers)
        {
            racer.Send("go");
        }

        List<string> results = racers.Select(r => r.WaitForLine("result")).ToList();
        Assert.Single(results, line => Field(line, "created") == "True");
        string creator = Field(results.Single(line => Field(line, "created") == "True"), "pid");
        Assert.All(results, line => Assert.Equal(creator, Field(line, "creator")));

        using (SharedSegment segment = SharedSegment.Open(name))
        {
            Assert.Equal(9, segment.Processes.Snapshot().Count); // the eight racers and this process
        }

        foreach (ChildProcess racer in racers)
        {
            racer.Send("exit");
            Assert.Equal(0, racer.Finish());
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void A_creator_killed_while_initializing_is_replaced(string backend)
    {
        string name = NewName("stall");
        ChildProcess creator = StartStalledCreator(name, backend);
        creator.Kill();

        using SharedSegment segment = Track(SharedSegment.OpenOrCreate(name, Options(backend)));
        Assert.True(segment.IsCreator);
        Assert.Equal(Environment.ProcessId, segment.Memory.Header.CreatorPid);
        ShmHandle block = segment.Allocate(64);
        Assert.Equal(64, segment.GetSpan(block).Length);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void A_killed_creator_leftover_is_reported_by_Open_and_left_for_Create(string backend)
    {
        string name = NewName("stall");
        ChildProcess creator = StartStalledCreator(name, backend);
        creator.Kill();

        SharedMemoryBackend kind = Options(backend).Backend;
        InvalidSegmentException e = Assert.Throws<InvalidSegmentException>(() => SharedSegment.Open(name, new SegmentOptions { Backend = kind }));
        Assert.Contains("creator died", e.Message, StringComparison.Ordinal);
        Assert.True(SharedSegment.Exists(name, kind)); // Open never removes anything

        using SharedSegment segment = Track(SharedSegment.Create(name, Options(backend)));
        Assert.True(segment.IsCreator);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void An_opener_gives_up_on_a_creator_that_never_finishes(string backend)
    {
        string name = NewName("stall");
        ChildProcess creator = StartStalledCreator(name, backend);
        var options = new SegmentOptions { Backend = Options(backend).Backend, OpenTimeout = TimeSpan.FromMilliseconds(300) };
        Assert.Throws<TimeoutException>(() => SharedSegment.Open(name, options));
        Assert.Throws<TimeoutException>(() => SharedSegment.OpenOrCreate(name, options));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task An_opener_waiting_on_a_creator_that_dies_creates_the_segment(string backend)
    {
        string name = NewName("stall");
        ChildProcess creator = StartStalledCreator(name, backend);

        using var waiting = new ManualResetEventSlim();
        void OnWaiting(string segment)
        {
            if (segment == name)
            {
                waiting.Set();
            }
        }

        SegmentTestHooks.WaitingForCreator += OnWaiting;
        try
        {
            SegmentOptions options = Options(backend);
            options.OpenTimeout = TimeSpan.FromSeconds(90);
            Task<SharedSegment> opener = Task.Run(() => SharedSegment.OpenOrCreate(name, options));
            Assert.True(waiting.Wait(ChildProcess.DefaultWait), "the opener never waited for the creator");
            Assert.False(opener.IsCompleted);
            creator.Kill();
            using SharedSegment segment = Track(await opener);
            Assert.True(segment.IsCreator);
        }
        finally
        {
            SegmentTestHooks.WaitingForCreator -= OnWaiting;
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Slots_of_a_killed_process_are_reclaimed(string backend)
    {
        string name = NewName("slots");
        using SharedSegment segment = SharedSegment.Create(name, Options(backend));
        ChildProcess child = Host(["hold", name, .. BackendArgs(backend)]);
        int slot = int.Parse(Field(child.WaitForLine("ready"), "slot"), CultureInfo.InvariantCulture);
        Assert.Contains(segment.Processes.Snapshot(), row => row.Index == slot && row.Pid == child.Pid && row.Liveness == Liveness.Alive);

        child.Kill();
        Assert.Contains(segment.Processes.Snapshot(), row => row.Index == slot && row.Liveness == Liveness.Dead);
        Assert.Equal(1, segment.ReclaimDeadProcesses());
        Assert.DoesNotContain(segment.Processes.Snapshot(), row => row.Index == slot);
        Assert.Equal(0, segment.ReclaimDeadProcesses());
    }

    [Fact]
    public void A_new_attachment_reclaims_dead_slots_by_itself()
    {
        string name = NewName("slots");
        using SharedSegment segment = SharedSegment.Create(name, Options("posix"));
        ChildProcess child = Host("hold", name);
        child.WaitForLine("ready");
        child.Kill();
        using SharedSegment again = SharedSegment.Open(name);
        Assert.All(again.Processes.Snapshot(), row => Assert.Equal(Environment.ProcessId, row.Pid));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void RemoveOnLastDetach_ignores_a_killed_peer(string backend)
    {
        string name = NewName("rold");
        SharedSegment segment = SharedSegment.Create(name, Options(backend, removeOnLastDetach: true));
        ChildProcess child = Host(["hold", name, .. BackendArgs(backend)]);
        child.WaitForLine("ready");
        child.Kill();
        segment.Dispose(); // the last live process leaves
        Assert.False(SharedSegment.Exists(name, Options(backend).Backend));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void RemoveOnLastDetach_segment_whose_processes_all_died_is_replaced(string backend)
    {
        string name = NewName("rold");
        ChildProcess child = Host(["hold", name, "--create", "--remove-on-last-detach", .. BackendArgs(backend)]);
        Assert.Equal("True", Field(child.WaitForLine("ready"), "created"));
        child.Kill();
        SharedMemoryBackend kind = Options(backend).Backend;
        Assert.True(SharedSegment.Exists(name, kind));

        using SharedSegment segment = Track(SharedSegment.OpenOrCreate(name, Options(backend, removeOnLastDetach: true)));
        Assert.True(segment.IsCreator);
    }

    [Fact]
    public void A_live_peer_keeps_a_RemoveOnLastDetach_segment()
    {
        string name = NewName("rold");
        ChildProcess child = Host("hold", name, "--create", "--remove-on-last-detach");
        child.WaitForLine("ready");
        using (SharedSegment segment = SharedSegment.OpenOrCreate(name, Options("posix", removeOnLastDetach: true)))
        {
            Assert.False(segment.IsCreator);
        }

        Assert.True(SharedSegment.Exists(name)); // the child is still attached
        child.Send("exit");
        Assert.Equal(0, child.Finish());
        Assert.False(SharedSegment.Exists(name));
    }

    [Fact]
    public void Growth_is_seen_by_a_second_process_and_nothing_moves()
    {
        string name = NewName("grow");
        using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 64 * 1024, MaxCapacity = 64 * 1024 * 1024 });
        nint baseBefore = segment.BaseAddress;
        ShmHandle early = segment.Allocate(1000);
        segment.GetSpan(early).Fill(0x11);

        ChildProcess child = Host("hold", name);
        string ready = child.WaitForLine("ready");
        Assert.Equal("65536", Field(ready, "capacity"));
        string childBase = Field(ready, "base");

        // This process grows the segment; the child reaches the new part.
        ShmHandle big = segment.Allocate(1024 * 1024);
        segment.GetSpan(big).Fill(0x77);
        Assert.True(segment.Capacity > 1024 * 1024);
        Assert.Equal(baseBefore, segment.BaseAddress);
        Assert.True(segment.GetSpan(early).IndexOfAnyExcept((byte)0x11) < 0); // old data in place
        child.Send($"check {big.Value} 119");
        string check = child.WaitForLine("checked");
        Assert.Equal("1048576", Field(check, "length"));
        Assert.Equal("True", Field(check, "ok"));
        Assert.Equal(childBase, Field(check, "base"));

        // The child grows it further; this process reads what it wrote.
        child.Send("alloc 4000000 7");
        string allocated = child.WaitForLine("handle");
        Assert.Equal(childBase, Field(allocated, "base"));
        Span<byte> span = segment.GetSpan(ShmHandle.FromValue(ulong.Parse(Field(allocated, "handle"), CultureInfo.InvariantCulture)));
        Assert.Equal(4000000, span.Length);
        Assert.True(span.IndexOfAnyExcept((byte)7) < 0);
        Assert.Equal(baseBefore, segment.BaseAddress);
        segment.ValidateHeap();
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Another_user_cannot_open_an_owner_only_segment(string backend)
    {
        Skip.IfNot(LibCanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("perm");
        using SharedSegment segment = SharedSegment.Create(name, Options(backend));
        ChildProcess stranger = HostAsUser(65534, 65534, ["open", name, .. BackendArgs(backend)]);
        string line = stranger.WaitForLine("error");
        Assert.StartsWith("error UnauthorizedAccessException", line, StringComparison.Ordinal);
        Assert.Equal(1, stranger.WaitForExit());
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Another_user_can_open_a_segment_shared_with_everyone(string backend)
    {
        Skip.IfNot(LibCanSwitchUser(), "needs root and setpriv to run a child as another user");
        string name = NewName("perm");
        SegmentOptions options = Options(backend);
        options.UnixFileMode = (UnixFileMode)0x1B6; // 0666
        using SharedSegment segment = SharedSegment.Create(name, options);

        // The segment is not the stranger's: it must say it shares with other users on purpose.
        ChildProcess wary = HostAsUser(65534, 65534, ["open", name, .. BackendArgs(backend)]);
        Assert.StartsWith("error UnauthorizedAccessException", wary.WaitForLine("error"), StringComparison.Ordinal);
        Assert.Equal(1, wary.WaitForExit());

        ChildProcess stranger = HostAsUser(65534, 65534, ["open-foreign", name, .. BackendArgs(backend)]);
        stranger.WaitForLine("opened");
        Assert.Equal(0, stranger.WaitForExit());
    }

    /// <summary>A child that creates the segment and stops for good before marking it ready.</summary>
    private ChildProcess StartStalledCreator(string name, string backend)
    {
        ChildProcess creator = Host(["create-stall", name, "--capacity", "262144", .. BackendArgs(backend)]);
        creator.WaitForLine("initializing");
        return creator;
    }

    private static bool LibCanSwitchUser() =>
        Platform.Linux.LibC.GetEuid() == 0 && (File.Exists("/usr/bin/setpriv") || File.Exists("/bin/setpriv"));
}
