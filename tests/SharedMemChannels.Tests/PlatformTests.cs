using System.Runtime.InteropServices;
using SharedMemChannels.Platform;
using SharedMemChannels.Platform.Linux;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>The platform layer: futex, futex_waitv, process liveness, errno mapping.</summary>
public class PlatformTests : SegmentTest
{
    [Fact]
    public async Task Futex_wait_sleeps_until_woken_through_a_shared_mapping()
    {
        using SharedSegment segment = CreateSegment(NewName("futex"), NewOptions());
        using SharedSegment other = OpenSegment(segment.Name);
        long offset = segment.Allocate(64, ShmOwnership.Segment).Offset + 32;
        IWaitOnAddress futex = PlatformServices.Futex;

        // Another mapping of the same memory (as another process would have) wakes the sleeper:
        // this only works because the PRIVATE flag is not used.
        using var sleeping = new ManualResetEventSlim();
        Task<bool> sleeper = Task.Run(() =>
        {
            sleeping.Set();
            bool woken;
            do
            {
                // True when woken (or when the word had already changed); false only if the wake from
                // the other mapping never arrived and the long timeout ran out.
                woken = futex.Wait(ref segment.Memory.Int32(offset), 0, TimeSpan.FromSeconds(90));
            }
            while (woken && Volatile.Read(ref segment.Memory.Int32(offset)) == 0);

            return woken;
        });
        sleeping.Wait();
        Volatile.Write(ref other.Memory.Int32(offset), 1);
        futex.Wake(ref other.Memory.Int32(offset), int.MaxValue);
        Assert.True(await sleeper);
    }

    [Fact]
    public void Futex_wait_returns_at_once_when_the_value_differs_and_false_on_timeout()
    {
        int[] pinned = GC.AllocateArray<int>(1, pinned: true);
        ref int word = ref pinned[0];
        word = 5;
        Assert.True(PlatformServices.Futex.Wait(ref word, 4, TimeSpan.FromSeconds(30))); // not 4: returns
        Assert.False(PlatformServices.Futex.Wait(ref word, 5, TimeSpan.FromMilliseconds(1))); // times out
        Assert.Equal(0, PlatformServices.Futex.Wake(ref word, 1)); // nobody sleeping
        Assert.Equal(5, pinned[0]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the fallback for kernels without futex_waitv
    public async Task Futex_waitv_wakes_on_any_of_several_words(bool fallback)
    {
        var futex = new LinuxFutex { ForceWaitAnyFallback = fallback };
        Assert.True(futex.SupportsWaitAny, "this machine's kernel has futex_waitv");
        int[] words = GC.AllocateArray<int>(4, pinned: true);
        nint address = Marshal.UnsafeAddrOfPinnedArrayElement(words, 0);
        WaitTarget[] targets = [.. Enumerable.Range(0, 4).Select(i => new WaitTarget(address + (i * 4), 0))];

        Assert.Equal(LinuxFutex.WaitAnyTimedOut, futex.WaitAny(targets, TimeSpan.FromMilliseconds(1)));

        using var sleeping = new ManualResetEventSlim();
        Task<int> sleeper = Task.Run(() =>
        {
            sleeping.Set();
            int result;
            do
            {
                result = futex.WaitAny(targets, TimeSpan.FromSeconds(90));
            }
            while (Volatile.Read(ref words[2]) == 0);
            return result;
        });
        sleeping.Wait();
        Volatile.Write(ref words[2], 1);
        futex.Wake(ref words[2], 1);
        int woke = await sleeper;
        Assert.True(woke is 2 or LinuxFutex.WaitAnyChanged, $"woke {woke}"); // the fallback reports a change without saying which
        Assert.Equal(LinuxFutex.WaitAnyChanged, futex.WaitAny(targets, TimeSpan.FromSeconds(1))); // word 2 is no longer 0
        Assert.Throws<ArgumentOutOfRangeException>(() => futex.WaitAny([], null));
        Assert.Throws<ArgumentOutOfRangeException>(() => futex.WaitAny(new WaitTarget[129], null));
    }

    [Fact]
    public void Liveness_tells_live_dead_and_reused_pids_apart()
    {
        IProcessInfo processes = PlatformServices.Processes;
        ProcessIdentity me = processes.Current;
        Assert.Equal(Environment.ProcessId, me.Pid);
        Assert.NotEqual(0UL, me.StartTime);
        Assert.NotEqual(0UL, me.PidNamespace);
        Assert.Equal(Liveness.Alive, processes.Probe(me));
        Assert.Equal(Liveness.Dead, processes.Probe(me with { StartTime = me.StartTime + 1 })); // a reused pid
        Assert.Equal(Liveness.Unknown, processes.Probe(me with { PidNamespace = me.PidNamespace + 1 }));
        Assert.Equal(Liveness.Dead, processes.Probe(new ProcessIdentity(0, 0, 0)));

        ChildProcess child = Host("open", "does-not-exist"); // exits at once with an error
        int pid = child.Pid;
        child.WaitForExit();
        Assert.Equal(Liveness.Dead, processes.Probe(new ProcessIdentity(pid, 0, me.PidNamespace)));
    }

    [Theory]
    [InlineData("1234 (dotnet) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21", 'S', 987654UL)]
    [InlineData("77 (a b) c) (d) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 42 20", 'Z', 42UL)]
    public void Proc_stat_lines_are_parsed_from_the_last_parenthesis(string line, char state, ulong startTime)
    {
        Assert.True(LinuxProcessInfo.TryParseStat(line, out char parsedState, out ulong parsedStart));
        Assert.Equal(state, parsedState);
        Assert.Equal(startTime, parsedStart);
        Assert.False(LinuxProcessInfo.TryParseStat("garbage", out _, out _));
        Assert.False(LinuxProcessInfo.TryParseStat("1 (x) S 1 2", out _, out _));
    }

    [Theory]
    [InlineData(Errno.ENOENT, typeof(FileNotFoundException))]
    [InlineData(Errno.EACCES, typeof(UnauthorizedAccessException))]
    [InlineData(Errno.EPERM, typeof(UnauthorizedAccessException))]
    [InlineData(Errno.EEXIST, typeof(IOException))]
    [InlineData(Errno.ENOSPC, typeof(OutOfSharedMemoryException))]
    [InlineData(Errno.ENOMEM, typeof(OutOfSharedMemoryException))]
    [InlineData(Errno.EINVAL, typeof(ArgumentException))]
    [InlineData(Errno.ENAMETOOLONG, typeof(PathTooLongException))]
    [InlineData(Errno.ENOSYS, typeof(PlatformNotSupportedException))]
    [InlineData(Errno.EIO, typeof(IOException))]
    public void Errno_maps_to_the_exception_a_dotnet_caller_expects(int errno, Type expected)
    {
        Exception e = Errno.ToException(errno, "shm_open", "/dev/shm/x");
        Assert.IsType(expected, e);
        Assert.Contains("shm_open", e.Message, StringComparison.Ordinal);
        Assert.Contains("/dev/shm/x", e.Message, StringComparison.Ordinal);
    }
}
