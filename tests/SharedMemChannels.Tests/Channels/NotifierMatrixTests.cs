using System.Diagnostics;
using System.Globalization;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

// RaftLib's CI matrix: {POSIX, System V} segment x {futex, POSIX semaphore, System V semaphore} notifier.
// POSIX segment x futex is SharedChannelConformanceTests itself; the remote flavours run the wake-ups
// across processes with semaphores.

public sealed class PosixSegmentPosixSemaphoreConformanceTests : SharedChannelConformanceTests
{
    protected override ChannelNotifier Notifier => ChannelNotifier.PosixSemaphore;
}

public sealed class PosixSegmentSystemVSemaphoreConformanceTests : SharedChannelConformanceTests
{
    protected override ChannelNotifier Notifier => ChannelNotifier.SystemVSemaphore;
}

public sealed class SystemVSegmentFutexConformanceTests : SharedChannelConformanceTests
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;
}

public sealed class SystemVSegmentPosixSemaphoreConformanceTests : SharedChannelConformanceTests
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;

    protected override ChannelNotifier Notifier => ChannelNotifier.PosixSemaphore;
}

public sealed class SystemVSegmentSystemVSemaphoreConformanceTests : SharedChannelConformanceTests
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;

    protected override ChannelNotifier Notifier => ChannelNotifier.SystemVSemaphore;
}

/// <summary>Reader here, writer in a child, woken through POSIX named semaphores.</summary>
public sealed class RemoteWriterPosixSemaphoreConformanceTests : RemoteChannelConformanceTests
{
    protected override ChannelNotifier Notifier => ChannelNotifier.PosixSemaphore;

    protected override System.Threading.Channels.Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: false);
}

/// <summary>Writer here, reader in a child on a System V segment, woken through System V semaphores.</summary>
public sealed class RemoteReaderSystemVSemaphoreConformanceTests : RemoteChannelConformanceTests
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;

    protected override ChannelNotifier Notifier => ChannelNotifier.SystemVSemaphore;

    protected override bool DropsHere => true;

    protected override System.Threading.Channels.Channel<int> CreateBounded(ChannelSpec spec) => CreateBounded(spec, localWriter: true);
}

/// <summary>The notifier semaphores themselves: made and removed with their channel, checked, refused when foreign.</summary>
public sealed class NotifierSemaphoreTests : SegmentTest
{
    private static string[] PosixSemaphoresOf(SharedSegment segment) =>
        Directory.GetFiles("/dev/shm", "sem.shmc.n." + segment.Name + ".*");

    [Fact]
    public void Posix_semaphores_are_made_with_the_channel_and_removed_with_it()
    {
        SharedSegment segment = NewSegment("notify");
        var options = new SharedChannelOptions(8) { Notifier = ChannelNotifier.PosixSemaphore };
        SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "c", options);
        string[] files = PosixSemaphoresOf(segment);
        Assert.Equal(2, files.Length);
        using (SharedChannel<int> other = SharedChannel.Open<int>(segment, "c"))
        {
            Assert.True(other.Writer.TryWrite(1));
            Assert.True(channel.Reader.TryRead(out int item) && item == 1);
        }

        channel.Dispose(); // the last reference: the channel and its semaphores go
        Assert.Empty(PosixSemaphoresOf(segment));
    }

    [Fact]
    public void System_V_semaphores_are_made_with_the_channel_and_removed_with_it()
    {
        SharedSegment segment = NewSegment("notify");
        var options = new SharedChannelOptions(8) { Notifier = ChannelNotifier.SystemVSemaphore, Persistent = true };
        int key;
        using (SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "c", options))
        {
            // This channel's own keys (other tests make semaphores of the same prefix at the same time).
            key = segment.Attachment.Memory.Ref<SharedMemChannels.Channels.ChannelControl>(channel.Core.ControlOffset).Notifier.Key;
            Assert.Equal(0x5C00_0000, key & 0x7F00_0000);
            Assert.True(SystemVSemaphoreExists(key) && SystemVSemaphoreExists(key + 1));
        }

        Assert.True(SystemVSemaphoreExists(key)); // persistent: still there with no reference
        Assert.True(SharedChannel.Remove(segment, "c"));
        Assert.False(SystemVSemaphoreExists(key) || SystemVSemaphoreExists(key + 1));
    }

    private static bool SystemVSemaphoreExists(int key) =>
        File.ReadLines("/proc/sysvipc/sem").Skip(1)
            .Any(line => int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture) == key);

    [Fact]
    public void The_notifier_is_part_of_the_channel_and_validated()
    {
        SharedSegment segment = NewSegment("notify");
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharedChannelOptions(4) { Notifier = (ChannelNotifier)7 });
        using SharedChannel<int> channel = SharedChannel.CreateBounded<int>(segment, "c", new SharedChannelOptions(4) { Notifier = ChannelNotifier.SystemVSemaphore });
        Assert.Throws<ArgumentException>(() => SharedChannel.OpenOrCreateBounded<int>(segment, "c", new SharedChannelOptions(4)));
    }

    [Fact]
    public async Task Pending_reads_on_a_semaphore_channel_share_one_thread_and_all_wake()
    {
        SharedSegment segment = NewSegment("notify");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(1000) { Notifier = ChannelNotifier.PosixSemaphore, SpinCount = 0, YieldCount = 0 });
        int before = Process.GetCurrentProcess().Threads.Count;
        var reads = new Task<long>[200];
        for (int i = 0; i < reads.Length; i++)
        {
            reads[i] = channel.Reader.ReadAsync().AsTask();
        }

        Assert.All(reads, r => Assert.False(r.IsCompleted));
        int added = Process.GetCurrentProcess().Threads.Count - before;
        Assert.True(added <= 4, $"{added} threads were added for 200 pending reads");

        using ChildProcess writer = HostOnBackend("channel-writer", segment.Name, "--channel", "c", "--id", "1", "--every", "1000");
        long[] items = await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(items.Length, items.Distinct().Count());
    }

    [Fact]
    public void A_missing_semaphore_is_a_damaged_channel_for_the_next_opener()
    {
        SharedSegment segment = NewSegment("notify");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(4) { Notifier = ChannelNotifier.PosixSemaphore });
        foreach (string file in PosixSemaphoresOf(segment))
        {
            File.Delete(file);
        }

        using ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", "c", "--as", "reader");
        Assert.Contains("InvalidSegmentException", child.WaitForLine("error", TimeSpan.FromSeconds(60)), StringComparison.Ordinal);
    }

    [Fact]
    public void Another_users_semaphore_under_the_channels_name_is_refused()
    {
        SharedSegment segment = NewSegment("notify");
        using SharedChannel<long> channel = SharedChannel.CreateBounded<long>(segment, "c", new SharedChannelOptions(4) { Notifier = ChannelNotifier.PosixSemaphore });
        string readers = PosixSemaphoresOf(segment).Single(f => f.EndsWith(".r", StringComparison.Ordinal));
        File.SetUnixFileMode(readers, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using (Process chown = Process.Start("chown", ["nobody", readers]))
        {
            Assert.True(chown.WaitForExit(30_000) && chown.ExitCode == 0);
        }

        // A new process opening the channel must not trust a semaphore another user now owns.
        using ChildProcess child = HostOnBackend("channel-hold", segment.Name, "--channel", "c", "--as", "reader");
        Assert.Contains("UnauthorizedAccessException", child.WaitForLine("error", TimeSpan.FromSeconds(60)), StringComparison.Ordinal);
    }
}
