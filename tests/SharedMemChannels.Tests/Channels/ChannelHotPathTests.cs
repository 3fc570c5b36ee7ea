using System.Diagnostics;
using System.Threading.Channels;
using SharedMemChannels.Synchronization;
using SharedMemChannels.Tests.Infrastructure;

// These tests hold ValueTasks to watch them complete without registering continuations.
#pragma warning disable CA2012 // Use ValueTasks correctly

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// "The hot path allocates nothing" and "no thread per waiting operation", for the channel: measured,
/// not assumed. Not run in parallel with other tests, because thread counts are process-wide.
/// </summary>
[Collection(nameof(WaiterTests))]
public sealed class ChannelHotPathTests : SegmentTest
{
    public static TheoryData<bool, BoundedChannelFullMode> Shapes => new()
    {
        { true, BoundedChannelFullMode.Wait },       // SPSC ring
        { false, BoundedChannelFullMode.Wait },      // MPMC ring
        { false, BoundedChannelFullMode.DropOldest }, // MPMC with eviction
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TryWrite_and_TryRead_allocate_nothing_in_steady_state(bool spsc, BoundedChannelFullMode mode)
    {
        using SharedChannel<long> channel = NewChannel(spsc, mode, capacity: 8);
        Churn(channel, 1000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long sum = Churn(channel, 20_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sum > 0);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void WriteAsync_and_ReadAsync_that_complete_at_once_allocate_nothing(bool spsc, BoundedChannelFullMode mode)
    {
        using SharedChannel<long> channel = NewChannel(spsc, mode, capacity: 8);
        ChurnAsync(channel, 1000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long sum = ChurnAsync(channel, 20_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(sum > 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadAsync_and_WriteAsync_that_wait_allocate_nothing_once_pooled(bool spsc)
    {
        using SharedChannel<long> channel = NewChannel(spsc, BoundedChannelFullMode.Wait, capacity: 1, spin: 0);
        Assert.Equal(0, WaitingRounds(channel, 200));
        long waiterBefore = AsyncWaiter.Shared.ThreadsAllocatedBytes;
        long before = GC.GetAllocatedBytesForCurrentThread();
        int wrong = WaitingRounds(channel, 2_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, wrong);
        Assert.Equal(0, allocated);
        Assert.Equal(0, AsyncWaiter.Shared.ThreadsAllocatedBytes - waiterBefore);
    }

    [Fact]
    public async Task A_thousand_pending_reads_on_a_hundred_channels_add_only_a_few_threads()
    {
        SharedSegment segment = NewSegment("threads", capacity: 16 << 20, max: 64 << 20);
        var channels = new List<SharedChannel<int>>();
        for (int i = 0; i < 100; i++)
        {
            channels.Add(Track(SharedChannel.CreateBounded<int>(segment, $"c{i}", new SharedChannelOptions(16) { SpinCount = 0, YieldCount = 0 })));
        }

        // Warm the thread pool and the waiter so that its first thread is not counted as ours.
        int threadsBefore = Process.GetCurrentProcess().Threads.Count;
        var pending = new List<Task<int>>();
        foreach (SharedChannel<int> channel in channels)
        {
            for (int r = 0; r < 10; r++)
            {
                pending.Add(channel.Reader.ReadAsync().AsTask());
            }
        }

        WaitUntil(() => AsyncWaiter.Shared.PendingCount >= 1000, "every read is registered with the waiter");
        int threadsDuring = Process.GetCurrentProcess().Threads.Count;
        Assert.All(pending, p => Assert.False(p.IsCompleted));
        Assert.True(threadsDuring - threadsBefore <= 4, $"{threadsDuring - threadsBefore} threads were added for 1,000 pending reads");

        for (int i = 0; i < channels.Count; i++)
        {
            for (int r = 0; r < 10; r++)
            {
                Assert.True(channels[i].Writer.TryWrite((i * 10) + r));
            }
        }

        int[] read = await Task.WhenAll(pending).WaitAsync(ChildProcess.DefaultWait);
        Assert.Equal(Enumerable.Range(0, 1000), read.Order());
    }

    [Fact]
    public async Task A_canceled_pending_read_leaves_no_registration_behind()
    {
        using SharedChannel<int> channel = NewChannel<int>(spsc: false, BoundedChannelFullMode.Wait, capacity: 4, spin: 0);
        int baseline = AsyncWaiter.Shared.PendingCount;
        for (int i = 0; i < 200; i++)
        {
            using var cts = new CancellationTokenSource();
            ValueTask<int> read = channel.Reader.ReadAsync(cts.Token);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await read);
        }

        WaitUntil(() => AsyncWaiter.Shared.PendingCount == baseline, "the canceled registrations are gone");
        Assert.True(channel.Writer.TryWrite(7));
        Assert.Equal(7, await channel.Reader.ReadAsync());
    }

    private SharedChannel<long> NewChannel(bool spsc, BoundedChannelFullMode mode, int capacity, int spin = SharedChannelOptions.DefaultSpinCount) =>
        NewChannel<long>(spsc, mode, capacity, spin);

    private SharedChannel<TItem> NewChannel<TItem>(bool spsc, BoundedChannelFullMode mode, int capacity, int spin = SharedChannelOptions.DefaultSpinCount)
        where TItem : unmanaged
    {
        SharedSegment segment = NewSegment("hot", capacity: 4 << 20);
        var options = new SharedChannelOptions(capacity) { SingleReader = spsc, SingleWriter = spsc, FullMode = mode, SpinCount = spin, YieldCount = spin == 0 ? 0 : 2 };
        return SharedChannel.CreateBounded<TItem>(segment, NewName("c"), options);
    }

    private static long Churn(SharedChannel<long> channel, int rounds)
    {
        long sum = 0;
        for (int i = 1; i <= rounds; i++)
        {
            channel.Writer.TryWrite(i);
            channel.Writer.TryWrite(i);
            channel.Reader.TryRead(out long a);
            channel.Reader.TryRead(out long b);
            sum += a + b;
        }

        return sum;
    }

    private static long ChurnAsync(SharedChannel<long> channel, int rounds)
    {
        long sum = 0;
        for (int i = 1; i <= rounds; i++)
        {
            ValueTask write = channel.Writer.WriteAsync(i);
            Assert.True(write.IsCompletedSuccessfully);
            write.GetAwaiter().GetResult();
            ValueTask<long> read = channel.Reader.ReadAsync();
            Assert.True(read.IsCompletedSuccessfully);
            sum += read.Result;
        }

        return sum;
    }

    /// <summary>
    /// Each round: a read that must wait for a write, then a write that must wait for a read. Returns the
    /// number of rounds that did not go as expected (no assertions inside: they allocate).
    /// </summary>
    private static int WaitingRounds(SharedChannel<long> channel, int rounds)
    {
        int wrong = 0;
        for (int i = 1; i <= rounds; i++)
        {
            ValueTask<long> read = channel.Reader.ReadAsync();
            wrong += read.IsCompleted ? 1 : 0;
            wrong += channel.Writer.TryWrite(i) ? 0 : 1;
            while (!read.IsCompleted)
            {
                Thread.SpinWait(20);
            }

            wrong += read.GetAwaiter().GetResult() == i ? 0 : 1;

            wrong += channel.Writer.TryWrite(-i) ? 0 : 1;
            ValueTask write = channel.Writer.WriteAsync(i);
            wrong += write.IsCompleted ? 1 : 0;
            wrong += channel.Reader.TryRead(out long first) && first == -i ? 0 : 1;
            while (!write.IsCompleted)
            {
                Thread.SpinWait(20);
            }

            write.GetAwaiter().GetResult();
            wrong += channel.Reader.TryRead(out long second) && second == i ? 0 : 1;
        }

        return wrong;
    }
}
