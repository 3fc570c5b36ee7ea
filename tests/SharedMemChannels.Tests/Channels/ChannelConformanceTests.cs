using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Tests.Infrastructure;

// The contract is about how ValueTasks complete (synchronously or not, once): these tests hold them,
// look at IsCompleted before awaiting and read results they know are there, on purpose.
#pragma warning disable CA2012 // Use ValueTasks correctly
#pragma warning disable xUnit1031 // Do not use blocking task operations in test method

namespace SharedMemChannels.Tests.Channels;

/// <summary>What a conformance test asks of the channel under test: the BCL's bounded options, as data.</summary>
/// <param name="Capacity">The bound.</param>
/// <param name="FullMode">What a write into a full channel does.</param>
/// <param name="SingleReader">Whether at most one reader reads at a time.</param>
/// <param name="SingleWriter">Whether at most one writer writes at a time.</param>
/// <param name="AllowSynchronousContinuations">Whether continuations may run inline on the completing thread.</param>
/// <param name="ItemDropped">Called with each item a drop mode discards.</param>
public sealed record ChannelSpec(
    int Capacity,
    BoundedChannelFullMode FullMode = BoundedChannelFullMode.Wait,
    bool SingleReader = false,
    bool SingleWriter = false,
    bool AllowSynchronousContinuations = false,
    Action<int>? ItemDropped = null);

/// <summary>
/// The observable contract of a bounded <see cref="Channel{T}"/>, written once (../shared/CHANNEL-CONTRACT.md,
/// items numbered as there) and run against every flavour: the BCL's own channel (the oracle that keeps
/// these tests honest), and ours. A subclass supplies the channel; flags say what a flavour can
/// observe (an exception object crosses a process only as a stand-in, a remote peer has no threads of
/// ours to run on).
/// </summary>
/// <remarks>
/// No test sleeps to synchronize or asserts a duration: pending operations are checked with
/// <see cref="ValueTask.IsCompleted"/> right after they are started, and waits for completion use a
/// generous timeout that only a hang reaches.
/// </remarks>
public abstract partial class ChannelConformanceTests : SegmentTest
{
    /// <summary>How long a wait for something that must happen may take before the test calls it a hang.</summary>
    protected static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>Makes a bounded channel of <see cref="int"/> as <paramref name="spec"/> says; throws as the BCL's factory throws.</summary>
    protected abstract Channel<int> CreateBounded(ChannelSpec spec);

    /// <summary>
    /// Whether an exception passed to <c>Complete(ex)</c> is observed as that same object (contract items
    /// 9, 12, 17, 19, 32, 34 and A.11). True in one process; across processes an observer in another
    /// process than the completer sees a stand-in carrying its type name and message.
    /// </summary>
    protected virtual bool ErrorObjectsCrossAsIs => true;

    /// <summary>
    /// Items per writer in the stress items (item 55). A flavour whose every call is a round trip to
    /// another process sends fewer, so that a loaded machine never turns the stress into a timeout.
    /// </summary>
    protected virtual int StressItems => 5_000;

    /// <summary>
    /// Whether the flavour is an unbounded channel (the spec's capacity is then a hint the flavour may use,
    /// e.g. as a chunk size, and its full mode is ignored): the items about the bound are skipped and the
    /// unbounded items (7, 9, 21-26, 50 as they read for an unbounded channel) run instead.
    /// </summary>
    protected virtual bool Unbounded => false;

    /// <summary>
    /// Whether the flavour is an unbounded prioritized channel (then also <see cref="Unbounded"/>): items are
    /// read smallest first (the BCL's <c>Channel.CreateUnboundedPrioritized</c> is the oracle), so an item that
    /// checks the order of items written out of order expects them sorted, and the Prioritized_ items run.
    /// </summary>
    protected virtual bool Prioritized => false;

    /// <summary>
    /// Whether the reader can peek (contract item 49). A serialized channel's cannot: a peeked record would be
    /// nobody's, so its <c>CanPeek</c> is false and <c>TryPeek</c> returns false, which item 49 checks instead.
    /// </summary>
    protected virtual bool CanPeek => true;

    /// <summary>Whether reader and writer run in this process, so that thread-level properties can be observed.</summary>
    protected virtual bool BothSidesLocal => true;

    /// <summary>
    /// Whether the writer (so the drops, and the itemDropped callback) runs in this process, so that the
    /// callback can write to the channel from another thread of ours (contract item 27: the callback runs
    /// in the process that drops).
    /// </summary>
    protected virtual bool DropsHere => BothSidesLocal;

    // ---------------------------------------------------------------- A.1 construction

    [Fact]
    public void Item01_a_negative_capacity_is_rejected()
    {
        ArgumentOutOfRangeException e = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => CreateBounded(new ChannelSpec(-1)));
        Assert.NotNull(e.ParamName);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    public void Item02_an_undefined_full_mode_is_rejected(int mode) =>
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => CreateBounded(new ChannelSpec(4, (BoundedChannelFullMode)mode)));

    [Fact]
    public void Item05_the_implicit_conversions_give_the_channels_reader_and_writer()
    {
        Channel<int> channel = CreateBounded(new ChannelSpec(4));
        ChannelReader<int> reader = channel;
        ChannelWriter<int> writer = channel;
        Assert.Same(channel.Reader, reader);
        Assert.Same(channel.Writer, writer);
    }

    // ---------------------------------------------------------------- A.2 writing

    [SkippableFact]
    public void Item07_TryWrite_succeeds_until_full_and_fails_after_completion_without_throwing()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(3));
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Writer.WriteAsync(2).IsCompletedSuccessfully);
        Assert.True(c.Writer.TryWrite(3));
        Assert.False(c.Writer.TryWrite(4));
        Assert.Equal(3, c.Reader.Count);
        c.Writer.Complete();
        Assert.False(c.Writer.TryWrite(5));
    }

    [SkippableFact]
    public async Task Item08_WriteAsync_on_a_full_channel_waits_for_a_read_then_enters_in_fifo_order()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Writer.TryWrite(2));
        ValueTask pending = c.Writer.WriteAsync(3);
        Assert.False(pending.IsCompleted);
        Assert.True(c.Reader.TryRead(out int first));
        Assert.Equal(1, first);
        await pending.AsTask().WaitAsync(Generous);
        Assert.Equal([2, 3], Drain(c.Reader));
    }

    [Fact]
    public async Task Item09_WaitToWriteAsync_is_true_with_space_false_after_Complete_and_throws_the_error_after_Complete_ex()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(1));
        ValueTask<bool> space = c.Writer.WaitToWriteAsync();
        Assert.True(space.IsCompletedSuccessfully);
        Assert.True(space.Result);

        c.Writer.Complete();
        ValueTask<bool> closed = c.Writer.WaitToWriteAsync();
        Assert.True(closed.IsCompleted);
        Assert.False(await closed);

        Channel<int> faulted = CreateBounded(new ChannelSpec(1));
        var error = new FormatException("bad input");
        faulted.Writer.Complete(error);
        Exception thrown = await Assert.ThrowsAnyAsync<Exception>(async () => await faulted.Writer.WaitToWriteAsync());
        AssertSameError(error, thrown);
    }

    [SkippableTheory]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Item09_25_in_a_drop_mode_WaitToWriteAsync_and_WriteAsync_complete_at_once_even_when_full(BoundedChannelFullMode mode)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(2, mode));
        for (int i = 0; i < 5; i++)
        {
            ValueTask<bool> wait = c.Writer.WaitToWriteAsync();
            Assert.True(wait.IsCompletedSuccessfully && wait.Result);
            Assert.True(c.Writer.WriteAsync(i).IsCompletedSuccessfully);
        }

        Assert.Equal(2, c.Reader.Count);
    }

    [SkippableFact]
    public async Task Item10_one_read_from_a_full_channel_completes_every_pending_WaitToWriteAsync()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(1));
        Assert.True(c.Writer.TryWrite(1));
        ValueTask<bool>[] waits = [c.Writer.WaitToWriteAsync(), c.Writer.WaitToWriteAsync(), c.Writer.WaitToWriteAsync()];
        Assert.All(waits, w => Assert.False(w.IsCompleted));
        Assert.True(c.Reader.TryRead(out _));
        foreach (ValueTask<bool> wait in waits)
        {
            Assert.True(await wait.AsTask().WaitAsync(Generous));
        }
    }

    [Fact]
    public async Task Item12_WriteAsync_after_Complete_throws_ChannelClosedException_with_the_error_as_inner()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        c.Writer.Complete();
        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.Writer.WriteAsync(1));
        Assert.Null(closed.InnerException);

        Channel<int> faulted = CreateBounded(new ChannelSpec(2));
        var error = new InvalidTimeZoneException("broken");
        faulted.Writer.Complete(error);
        closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await faulted.Writer.WriteAsync(1));
        AssertSameError(error, closed.InnerException);
    }

    [Fact]
    public async Task Item13_a_write_reaches_a_reader_that_is_already_waiting()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        await c.Writer.WriteAsync(42);
        Assert.Equal(42, await read.AsTask().WaitAsync(Generous));
    }

    // ---------------------------------------------------------------- A.3 reading

    [Fact]
    public void Item14_TryRead_gives_items_in_fifo_order_and_default_when_empty()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(5));
        for (int i = 1; i <= 5; i++)
        {
            Assert.True(c.Writer.TryWrite(i * 10));
        }

        Assert.Equal([10, 20, 30, 40, 50], Drain(c.Reader));
        Assert.False(c.Reader.TryRead(out int none));
        Assert.Equal(0, none);
    }

    [Fact]
    public void Item15_after_completion_TryRead_drains_the_buffer_then_fails()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Writer.TryWrite(2));
        c.Writer.Complete();
        Assert.Equal([1, 2], Drain(c.Reader));
        Assert.False(c.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Item16_ReadAsync_completes_at_once_with_data_and_concurrent_pending_readers_each_get_one_item()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(16));
        Assert.True(c.Writer.TryWrite(7));
        ValueTask<int> ready = c.Reader.ReadAsync();
        Assert.True(ready.IsCompletedSuccessfully);
        Assert.Equal(7, ready.Result);

        var readers = Enumerable.Range(0, 8).Select(_ => c.Reader.ReadAsync().AsTask()).ToArray();
        Assert.All(readers, r => Assert.False(r.IsCompleted));
        for (int i = 1; i <= 8; i++)
        {
            await c.Writer.WriteAsync(i);
        }

        int[] got = await Task.WhenAll(readers).WaitAsync(Generous);
        Assert.Equal(Enumerable.Range(1, 8), got.Order());
    }

    [Fact]
    public async Task Item17_ReadAsync_on_a_completed_empty_channel_throws_as_the_completion_says()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        c.Writer.Complete();
        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.Reader.ReadAsync());
        Assert.Null(closed.InnerException);

        Channel<int> faulted = CreateBounded(new ChannelSpec(2));
        var error = new ArithmeticException("overflowed");
        faulted.Writer.Complete(error);
        closed = await Assert.ThrowsAsync<ChannelClosedException>(async () => await faulted.Reader.ReadAsync());
        AssertSameError(error, closed.InnerException);

        Channel<int> canceled = CreateBounded(new ChannelSpec(2));
        canceled.Writer.Complete(new OperationCanceledException());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await canceled.Reader.ReadAsync());
    }

    [Fact]
    public async Task Item18_a_pending_ReadAsync_fails_with_ChannelClosedException_when_the_writer_completes()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        c.Writer.Complete();
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await read.AsTask().WaitAsync(Generous));
    }

    [Fact]
    public async Task Item19_WaitToReadAsync_follows_data_completion_and_drain()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        ValueTask<bool> pending = c.Reader.WaitToReadAsync();
        Assert.False(pending.IsCompleted);
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(await pending.AsTask().WaitAsync(Generous));

        ValueTask<bool> available = c.Reader.WaitToReadAsync();
        Assert.True(available.IsCompletedSuccessfully && available.Result);

        c.Writer.Complete();
        ValueTask<bool> stillData = c.Reader.WaitToReadAsync();
        Assert.True(stillData.IsCompletedSuccessfully && stillData.Result);
        Assert.True(c.Reader.TryRead(out _));
        ValueTask<bool> drained = c.Reader.WaitToReadAsync();
        Assert.True(drained.IsCompleted);
        Assert.False(await drained);

        Channel<int> faulted = CreateBounded(new ChannelSpec(4));
        var error = new TimeoutException("upstream");
        faulted.Writer.Complete(error);
        Exception thrown = await Assert.ThrowsAnyAsync<Exception>(async () => await faulted.Reader.WaitToReadAsync());
        AssertSameError(error, thrown);
    }

    // ---------------------------------------------------------------- A.4 full modes

    [SkippableFact]
    public async Task Item21_Wait_mode_refuses_when_full_keeps_the_count_and_never_drops()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        int dropped = 0;
        Channel<int> c = CreateBounded(new ChannelSpec(3, ItemDropped: _ => Interlocked.Increment(ref dropped)));
        for (int i = 0; i < 3; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.False(c.Writer.TryWrite(99));
        Assert.Equal(3, c.Reader.Count);
        ValueTask blocked = c.Writer.WriteAsync(100);
        Assert.False(blocked.IsCompleted);
        Assert.True(c.Reader.TryRead(out _));
        await blocked.AsTask().WaitAsync(Generous);
        Assert.Equal([1, 2, 100], Drain(c.Reader));
        Assert.Equal(0, Volatile.Read(ref dropped));
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    public void Item22_DropOldest_keeps_the_newest_and_drops_each_evicted_item_once(int n)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        var dropped = new List<int>();
        Channel<int> c = CreateBounded(new ChannelSpec(n, BoundedChannelFullMode.DropOldest, ItemDropped: i => { lock (dropped) { dropped.Add(i); } }));
        for (int i = 0; i < 2 * n; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal(Enumerable.Range(n, n), Drain(c.Reader));
        Assert.Equal(Enumerable.Range(0, n), dropped);
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    public void Item23_DropNewest_evicts_the_most_recently_buffered_item(int n)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        var dropped = new List<int>();
        Channel<int> c = CreateBounded(new ChannelSpec(n, BoundedChannelFullMode.DropNewest, ItemDropped: i => { lock (dropped) { dropped.Add(i); } }));
        for (int i = 0; i < 2 * n; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal(Enumerable.Range(0, n - 1).Append((2 * n) - 1), Drain(c.Reader));
        Assert.Equal(Enumerable.Range(n - 1, n), dropped);
    }

    [SkippableFact]
    public void Item23_DropNewest_is_right_after_the_ring_has_wrapped()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(3, BoundedChannelFullMode.DropNewest));
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Reader.TryRead(out int one));
        Assert.Equal(1, one);
        foreach (int i in new[] { 2, 3, 4, 5 })
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal([2, 3, 5], Drain(c.Reader));
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(10)]
    public void Item24_DropWrite_discards_the_new_item_and_reports_it(int n)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        var dropped = new List<int>();
        Channel<int> c = CreateBounded(new ChannelSpec(n, BoundedChannelFullMode.DropWrite, ItemDropped: i => { lock (dropped) { dropped.Add(i); } }));
        for (int i = 0; i < 2 * n; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal(Enumerable.Range(0, n), Drain(c.Reader));
        Assert.Equal(Enumerable.Range(n, n), dropped);
    }

    [SkippableTheory]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Item26_itemDropped_is_called_once_per_dropped_item_never_under_capacity_and_may_be_null(BoundedChannelFullMode mode)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        var seen = new List<int>();
        Channel<int> c = CreateBounded(new ChannelSpec(5, mode, ItemDropped: i => { lock (seen) { seen.Add(i); } }));
        for (int i = 0; i < 5; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Empty(seen);
        for (int i = 5; i < 15; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal(10, seen.Count);
        Assert.Equal(10, seen.Distinct().Count());

        Channel<int> noCallback = CreateBounded(new ChannelSpec(1, mode));
        Assert.True(noCallback.Writer.TryWrite(1));
        Assert.True(noCallback.Writer.TryWrite(2));
        Assert.Equal(1, noCallback.Reader.Count);
    }

    [SkippableTheory]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Item27_itemDropped_runs_after_the_channel_is_released_so_another_thread_can_write_from_it(BoundedChannelFullMode mode)
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Skip.IfNot(DropsHere, "the callback runs in the process that drops");
        Channel<int>? c = null;
        int nested = 0;
        c = CreateBounded(new ChannelSpec(1, mode, ItemDropped: _ =>
        {
            if (Interlocked.Increment(ref nested) == 1)
            {
                // Another thread writes while this callback still runs: a lock held across the callback would deadlock it.
                Assert.True(Task.Run(() => c!.Writer.TryWrite(1000)).Wait(Generous));
            }
        }));
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Writer.TryWrite(2));
        Assert.True(Volatile.Read(ref nested) >= 1);
    }

    // ---------------------------------------------------------------- A.5 completion

    [Fact]
    public void Item29_TryComplete_is_true_once_and_a_second_Complete_throws_ChannelClosedException()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Assert.True(c.Writer.TryComplete());
        Assert.False(c.Writer.TryComplete());
        Assert.False(c.Writer.TryComplete(new InvalidOperationException()));
        InvalidOperationException e = Assert.ThrowsAny<InvalidOperationException>(() => c.Writer.Complete());
        Assert.IsType<ChannelClosedException>(e);
    }

    [Fact]
    public void Item30_Completion_is_one_task_that_is_not_complete_before_Complete()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Task completion = c.Reader.Completion;
        Assert.Same(completion, c.Reader.Completion);
        Assert.False(completion.IsCompleted);
    }

    [Fact]
    public async Task Item31_33_Completion_waits_for_the_buffer_to_drain_and_Complete_keeps_buffered_items()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Assert.True(c.Writer.TryWrite(42));
        c.Writer.Complete();
        Assert.False(c.Reader.Completion.IsCompleted);
        Assert.True(c.Reader.TryRead(out int item));
        Assert.Equal(42, item);
        await c.Reader.Completion.WaitAsync(Generous);
    }

    [Fact]
    public async Task Item32_the_completion_state_follows_the_argument()
    {
        Channel<int> ok = CreateBounded(new ChannelSpec(2));
        ok.Writer.Complete();
        await ok.Reader.Completion.WaitAsync(Generous);
        Assert.Equal(TaskStatus.RanToCompletion, ok.Reader.Completion.Status);

        Channel<int> faulted = CreateBounded(new ChannelSpec(2));
        var error = new DivideByZeroException("zero");
        faulted.Writer.Complete(error);
        await Assert.ThrowsAnyAsync<Exception>(() => faulted.Reader.Completion.WaitAsync(Generous));
        Assert.Equal(TaskStatus.Faulted, faulted.Reader.Completion.Status);
        AssertSameError(error, faulted.Reader.Completion.Exception!.InnerException);

        Channel<int> canceled = CreateBounded(new ChannelSpec(2));
        canceled.Writer.Complete(new OperationCanceledException(new CancellationToken(canceled: true)));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled.Reader.Completion.WaitAsync(Generous));
        Assert.Equal(TaskStatus.Canceled, canceled.Reader.Completion.Status);
    }

    [SkippableFact]
    public async Task Item34_completion_wakes_every_pending_operation()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(1));
        ValueTask<bool> waitRead = c.Reader.WaitToReadAsync();
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(waitRead.IsCompleted || read.IsCompleted);
        c.Writer.Complete();
        Assert.False(await waitRead.AsTask().WaitAsync(Generous));
        await Assert.ThrowsAsync<ChannelClosedException>(() => read.AsTask().WaitAsync(Generous));

        Channel<int> full = CreateBounded(new ChannelSpec(1));
        Assert.True(full.Writer.TryWrite(1));
        ValueTask blockedWrite = full.Writer.WriteAsync(2);
        ValueTask<bool> waitWrite = full.Writer.WaitToWriteAsync();
        Assert.False(blockedWrite.IsCompleted || waitWrite.IsCompleted);
        var error = new NotSupportedException("stop");
        full.Writer.Complete(error);
        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(() => blockedWrite.AsTask().WaitAsync(Generous));
        AssertSameError(error, closed.InnerException);
        Exception waitError = await Assert.ThrowsAnyAsync<Exception>(() => waitWrite.AsTask().WaitAsync(Generous));
        AssertSameError(error, waitError);
    }

    [Fact]
    public async Task Item35_TryRead_racing_TryComplete_never_leaves_Completion_stuck()
    {
        for (int i = 0; i < 200; i++)
        {
            Channel<int> c = CreateBounded(new ChannelSpec(1));
            Assert.True(c.Writer.TryWrite(i));
            Task reading = Task.Run(() => c.Reader.TryRead(out _));
            Task completing = Task.Run(() => c.Writer.TryComplete());
            await Task.WhenAll(reading, completing).WaitAsync(Generous);
            c.Reader.TryRead(out _);
            await c.Reader.Completion.WaitAsync(Generous);
        }
    }

    // ---------------------------------------------------------------- A.6 cancellation

    [Fact]
    public async Task Item38_a_canceled_token_cancels_at_once_and_consumes_nothing()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Assert.True(c.Writer.TryWrite(5));

        Assert.True(c.Reader.ReadAsync(cts.Token).IsCanceled);
        Assert.True(c.Reader.WaitToReadAsync(cts.Token).IsCanceled);
        Assert.True(c.Writer.WriteAsync(6, cts.Token).IsCanceled);
        Assert.True(c.Writer.WaitToWriteAsync(cts.Token).IsCanceled);
        Assert.Equal(1, c.Reader.Count);
        Assert.Equal(5, await c.Reader.ReadAsync());
    }

    [Fact]
    public async Task Item39_canceling_a_pending_read_or_wait_completes_it_as_canceled_with_that_token()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        using var cts = new CancellationTokenSource();
        ValueTask<int> read = c.Reader.ReadAsync(cts.Token);
        ValueTask<bool> wait = c.Reader.WaitToReadAsync(cts.Token);
        Assert.False(read.IsCompleted || wait.IsCompleted);
        await cts.CancelAsync();
        OperationCanceledException e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.AsTask().WaitAsync(Generous));
        Assert.Equal(cts.Token, e.CancellationToken);
        e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.AsTask().WaitAsync(Generous));
        Assert.Equal(cts.Token, e.CancellationToken);
    }

    [Fact]
    public async Task Item40_canceled_pending_reads_do_not_swallow_later_items()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        for (int i = 0; i < 5; i++)
        {
            using var cts = new CancellationTokenSource();
            ValueTask<int> read = c.Reader.ReadAsync(cts.Token);
            Assert.False(read.IsCompleted);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.AsTask().WaitAsync(Generous));
        }

        for (int i = 0; i < 7; i++)
        {
            ValueTask<int> read = c.Reader.ReadAsync();
            await c.Writer.WriteAsync(i);
            Assert.Equal(i, await read.AsTask().WaitAsync(Generous));
        }

        Assert.Equal(0, c.Reader.Count);
    }

    [SkippableFact]
    public async Task Item41_a_canceled_pending_write_does_not_enqueue_its_item()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(1));
        Assert.True(c.Writer.TryWrite(42));
        using var cts = new CancellationTokenSource();
        ValueTask canceledWrite = c.Writer.WriteAsync(43, cts.Token);
        Assert.False(canceledWrite.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceledWrite.AsTask().WaitAsync(Generous));

        ValueTask laterWrite = c.Writer.WriteAsync(44);
        Assert.Equal(42, await c.Reader.ReadAsync());
        await laterWrite.AsTask().WaitAsync(Generous);
        Assert.Equal(44, await c.Reader.ReadAsync());
        Assert.False(c.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Item43_a_canceled_read_leaves_the_channel_usable_for_completion()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        using var cts = new CancellationTokenSource();
        ValueTask<int> read = c.Reader.ReadAsync(cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.AsTask().WaitAsync(Generous));
        ValueTask<bool> wait = c.Reader.WaitToReadAsync();
        c.Writer.Complete();
        Assert.False(await wait.AsTask().WaitAsync(Generous));
    }

    // ---------------------------------------------------------------- A.7 ReadAllAsync

    [Fact]
    public async Task Item44_46_ReadAllAsync_gives_a_new_enumerable_each_call_and_ends_after_completion_and_drain()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        Assert.NotSame(c.Reader.ReadAllAsync(), c.Reader.ReadAllAsync());
        Assert.True(c.Writer.TryWrite(1));
        Assert.True(c.Writer.TryWrite(2));
        c.Writer.Complete();
        var got = new List<int>();
        await foreach (int item in c.Reader.ReadAllAsync())
        {
            got.Add(item);
        }

        Assert.Equal([1, 2], got);
        await using IAsyncEnumerator<int> after = c.Reader.ReadAllAsync().GetAsyncEnumerator();
        Assert.False(await after.MoveNextAsync());
        Assert.False(await after.MoveNextAsync());
    }

    [Fact]
    public async Task Item45_MoveNextAsync_completes_at_once_with_data_and_otherwise_waits_for_a_write()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        await using IAsyncEnumerator<int> e = c.Reader.ReadAllAsync().GetAsyncEnumerator();
        ValueTask<bool> waiting = e.MoveNextAsync();
        Assert.False(waiting.IsCompleted);
        Assert.True(c.Writer.TryWrite(9));
        Assert.True(await waiting.AsTask().WaitAsync(Generous));
        Assert.Equal(9, e.Current);
        Assert.True(c.Writer.TryWrite(10));
        ValueTask<bool> ready = e.MoveNextAsync();
        Assert.True(ready.IsCompletedSuccessfully && ready.Result);
        Assert.Equal(10, e.Current);
    }

    [Fact]
    public async Task Item47_two_concurrent_enumerators_split_the_items_and_the_totals_match()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(8));
        async Task<List<int>> Consume()
        {
            var mine = new List<int>();
            await foreach (int item in c.Reader.ReadAllAsync())
            {
                mine.Add(item);
            }

            return mine;
        }

        Task<List<int>> a = Task.Run(Consume);
        Task<List<int>> b = Task.Run(Consume);
        for (int i = 1; i <= 500; i++)
        {
            await c.Writer.WriteAsync(i);
        }

        c.Writer.Complete();
        List<int>[] parts = await Task.WhenAll(a, b).WaitAsync(Generous);
        Assert.Equal(Enumerable.Range(1, 500), parts.SelectMany(p => p).Order());
    }

    [Fact]
    public async Task Item48_a_canceled_token_ends_the_enumeration_with_OperationCanceledException()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        using var cts = new CancellationTokenSource();
        await using IAsyncEnumerator<int> e = c.Reader.ReadAllAsync(cts.Token).GetAsyncEnumerator();
        ValueTask<bool> waiting = e.MoveNextAsync();
        Assert.False(waiting.IsCompleted);
        await cts.CancelAsync();
        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.AsTask().WaitAsync(Generous));
        Assert.Equal(cts.Token, oce.CancellationToken);
    }

    // ---------------------------------------------------------------- A.8 count and peek

    [Fact]
    public void Item49_TryPeek_shows_the_head_without_taking_it_also_after_completion()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(3));
        if (!CanPeek)
        {
            Assert.False(c.Reader.CanPeek);
            Assert.True(c.Writer.TryWrite(11));
            Assert.False(c.Reader.TryPeek(out int nothing));
            Assert.Equal(0, nothing);
            Assert.Equal([11], Drain(c.Reader));
            return;
        }

        Assert.True(c.Reader.CanPeek);
        Assert.False(c.Reader.TryPeek(out int none));
        Assert.Equal(0, none);
        Assert.True(c.Writer.TryWrite(11));
        Assert.True(c.Writer.TryWrite(12));
        Assert.True(c.Reader.TryPeek(out int head));
        Assert.Equal(11, head);
        Assert.Equal(2, c.Reader.Count);
        c.Writer.Complete();
        Assert.True(c.Reader.TryPeek(out head));
        Assert.Equal(11, head);
        Assert.Equal([11, 12], Drain(c.Reader));
        Assert.False(c.Reader.TryPeek(out _));
    }

    [SkippableFact]
    public void Item50_51_a_bounded_channel_counts_exactly_when_quiescent()
    {
        Skip.If(Unbounded, "about the bound: the unbounded flavours run the Unbounded_ items instead");
        Channel<int> c = CreateBounded(new ChannelSpec(3));
        Assert.True(c.Reader.CanCount);
        Assert.Equal(0, c.Reader.Count);
        for (int i = 1; i <= 3; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
            Assert.Equal(i, c.Reader.Count);
        }

        Assert.False(c.Writer.TryWrite(4));
        Assert.Equal(3, c.Reader.Count);
        c.Writer.Complete();
        Assert.Equal(3, c.Reader.Count);
        for (int i = 2; i >= 0; i--)
        {
            Assert.True(c.Reader.TryRead(out _));
            Assert.Equal(i, c.Reader.Count);
        }
    }

    // ---------------------------------------------------------------- A.9 ValueTask contract

    [Fact]
    public async Task Item52_a_pending_ValueTask_may_be_awaited_only_once()
    {
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
        Assert.True(c.Writer.TryWrite(3));
        Assert.Equal(3, await read);
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());
    }

    [Theory]
    [InlineData(true, null)]
    [InlineData(false, null)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void Item52_a_second_continuation_on_a_pending_operation_is_InvalidOperationException_under_a_SynchronizationContext(bool flowContext, bool? continueOnCapturedContext)
    {
        // A context of another type than SynchronizationContext itself is captured by the awaiters' OnCompleted:
        // the runtime's tests met it as xunit's, where the second registration failed inside
        // ManualResetValueTaskSourceCore with an InvalidCastException.
        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(new PoolPostingContext());
        try
        {
            Channel<int> c = CreateBounded(new ChannelSpec(1));
            ValueTask<int> read = c.Reader.ReadAsync();
            AssertOneContinuation(read.IsCompleted, () => Register(read));
            ValueTask<bool> waitRead = c.Reader.WaitToReadAsync();
            AssertOneContinuation(waitRead.IsCompleted, () => Register(waitRead));
            if (!Unbounded)
            {
                c = CreateBounded(new ChannelSpec(1)); // no pending reader: the BCL's would take the item
                Assert.True(c.Writer.TryWrite(1));
                ValueTask write = c.Writer.WriteAsync(2);
                AssertOneContinuation(write.IsCompleted, () => RegisterVoid(write));
                ValueTask<bool> waitWrite = c.Writer.WaitToWriteAsync();
                AssertOneContinuation(waitWrite.IsCompleted, () => Register(waitWrite));
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        static void AssertOneContinuation(bool completed, Action register)
        {
            Assert.False(completed);
            register();
            Assert.Throws<InvalidOperationException>(register);
        }

        void Register<TResult>(ValueTask<TResult> pending)
        {
            if (continueOnCapturedContext is { } captured)
            {
                ConfiguredValueTaskAwaitable<TResult>.ConfiguredValueTaskAwaiter awaiter = pending.ConfigureAwait(captured).GetAwaiter();
                Action registration = flowContext ? () => awaiter.OnCompleted(() => { }) : () => awaiter.UnsafeOnCompleted(() => { });
                registration();
            }
            else
            {
                ValueTaskAwaiter<TResult> awaiter = pending.GetAwaiter();
                Action registration = flowContext ? () => awaiter.OnCompleted(() => { }) : () => awaiter.UnsafeOnCompleted(() => { });
                registration();
            }
        }

        void RegisterVoid(ValueTask pending)
        {
            if (continueOnCapturedContext is { } captured)
            {
                ConfiguredValueTaskAwaitable.ConfiguredValueTaskAwaiter awaiter = pending.ConfigureAwait(captured).GetAwaiter();
                Action registration = flowContext ? () => awaiter.OnCompleted(() => { }) : () => awaiter.UnsafeOnCompleted(() => { });
                registration();
            }
            else
            {
                ValueTaskAwaiter awaiter = pending.GetAwaiter();
                Action registration = flowContext ? () => awaiter.OnCompleted(() => { }) : () => awaiter.UnsafeOnCompleted(() => { });
                registration();
            }
        }
    }

    /// <summary>A context of its own type (so that awaiters capture it) that posts to the pool.</summary>
    private sealed class PoolPostingContext : SynchronizationContext
    {
        public override void Post(SendOrPostCallback d, object? state) => ThreadPool.UnsafeQueueUserWorkItem(s => d(s), state, preferLocal: false);
    }

    [SkippableFact]
    public async Task Item53_without_synchronous_continuations_a_reader_never_continues_on_the_writers_thread()
    {
        Skip.IfNot(BothSidesLocal, "a remote writer has no thread here");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        int writerThread = -1;
        Task<int> reader = ReadAndReportThread(c.Reader);
        async Task<int> ReadAndReportThread(ChannelReader<int> r)
        {
            await r.ReadAsync();
            return Environment.CurrentManagedThreadId;
        }

        Assert.False(reader.IsCompleted);
        var writer = new Thread(() =>
        {
            writerThread = Environment.CurrentManagedThreadId;
            Assert.True(c.Writer.TryWrite(1));
            // Stay busy until the continuation has run somewhere: were it inline, it would have run already.
            SpinWait.SpinUntil(() => reader.IsCompleted, Generous);
        });
        writer.Start();
        int continuationThread = await reader.WaitAsync(Generous);
        writer.Join();
        Assert.NotEqual(writerThread, continuationThread);
    }

    // ---------------------------------------------------------------- A.10 under load

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 4)]
    [InlineData(4, 1)]
    [InlineData(4, 4)]
    public async Task Item55_nothing_is_lost_or_duplicated_with_many_readers_and_writers(int writers, int readers)
    {
        int perWriter = StressItems;
        Channel<int> c = CreateBounded(new ChannelSpec(64, SingleReader: readers == 1, SingleWriter: writers == 1));
        Task<long>[] reading = Enumerable.Range(0, readers).Select(_ => Task.Run(async () =>
        {
            long sum = 0;
            while (await c.Reader.WaitToReadAsync())
            {
                while (c.Reader.TryRead(out int item))
                {
                    sum += item;
                }
            }

            return sum;
        })).ToArray();
        Task[] writing = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (int i = 1; i <= perWriter; i++)
            {
                await c.Writer.WriteAsync(i);
            }
        })).ToArray();
        await Task.WhenAll(writing).WaitAsync(Generous);
        c.Writer.Complete();
        long[] sums = await Task.WhenAll(reading).WaitAsync(Generous);
        Assert.Equal((long)writers * perWriter * (perWriter + 1) / 2, sums.Sum());
    }

    [Fact]
    public async Task Item55_ping_pong_between_two_channels()
    {
        Channel<int> ping = CreateBounded(new ChannelSpec(1, SingleReader: true, SingleWriter: true));
        Channel<int> pong = CreateBounded(new ChannelSpec(1, SingleReader: true, SingleWriter: true));
        int rounds = StressItems * 2;
        Task echo = Task.Run(async () =>
        {
            for (int i = 0; i < rounds; i++)
            {
                await pong.Writer.WriteAsync(await ping.Reader.ReadAsync());
            }
        });
        for (int i = 0; i < rounds; i++)
        {
            await ping.Writer.WriteAsync(i);
            Assert.Equal(i, await pong.Reader.ReadAsync());
        }

        await echo.WaitAsync(Generous);
    }

    // ---------------------------------------------------------------- unbounded channels

    [SkippableFact]
    public async Task Unbounded_Item07_08_writes_never_refuse_or_wait_until_completion_and_keep_fifo_order()
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(3));
        for (int i = 0; i < 50; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
            ValueTask write = c.Writer.WriteAsync(1000 + i);
            Assert.True(write.IsCompletedSuccessfully);
            await write;
        }

        IEnumerable<int> written = Enumerable.Range(0, 50).SelectMany(i => new[] { i, 1000 + i });
        Assert.Equal(Prioritized ? written.Order() : written, Drain(c.Reader));
        c.Writer.Complete();
        Assert.False(c.Writer.TryWrite(5));
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.Writer.WriteAsync(6));
    }

    [SkippableFact]
    public async Task Unbounded_Item09_WaitToWriteAsync_is_true_at_once_until_completion_whatever_is_buffered()
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        for (int i = 0; i < 20; i++)
        {
            ValueTask<bool> wait = c.Writer.WaitToWriteAsync();
            Assert.True(wait.IsCompletedSuccessfully && wait.Result);
            Assert.True(c.Writer.TryWrite(i));
        }

        var error = new FormatException("bad input");
        c.Writer.Complete(error);
        Exception thrown = await Assert.ThrowsAnyAsync<Exception>(async () => await c.Writer.WaitToWriteAsync());
        AssertSameError(error, thrown);
        Assert.Equal(Enumerable.Range(0, 20), Drain(c.Reader));
    }

    [SkippableTheory]
    [InlineData(BoundedChannelFullMode.Wait)]
    [InlineData(BoundedChannelFullMode.DropOldest)]
    [InlineData(BoundedChannelFullMode.DropNewest)]
    [InlineData(BoundedChannelFullMode.DropWrite)]
    public void Unbounded_Item21_26_nothing_is_ever_dropped_whatever_the_full_mode(BoundedChannelFullMode mode)
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        int dropped = 0;
        Channel<int> c = CreateBounded(new ChannelSpec(2, mode, ItemDropped: _ => Interlocked.Increment(ref dropped)));
        for (int i = 0; i < 25; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        Assert.Equal(Enumerable.Range(0, 25), Drain(c.Reader));
        Assert.Equal(0, Volatile.Read(ref dropped));
    }

    [SkippableFact]
    public async Task Unbounded_Item34_completion_wakes_pending_reads_and_waits()
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(1));
        ValueTask<bool> waitRead = c.Reader.WaitToReadAsync();
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(waitRead.IsCompleted || read.IsCompleted);
        var error = new NotSupportedException("stop");
        c.Writer.Complete(error);
        Exception waitError = await Assert.ThrowsAnyAsync<Exception>(() => waitRead.AsTask().WaitAsync(Generous));
        AssertSameError(error, waitError);
        ChannelClosedException closed = await Assert.ThrowsAsync<ChannelClosedException>(() => read.AsTask().WaitAsync(Generous));
        AssertSameError(error, closed.InnerException);
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Unbounded_Item50_51_the_count_follows_writes_and_reads_when_quiescent(bool singleReader)
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(3, SingleReader: singleReader));
        if (!c.Reader.CanCount)
        {
            // The BCL's single-reader unbounded channel does not count (item 50).
            Assert.True(singleReader);
            Assert.Throws<NotSupportedException>(() => c.Reader.Count);
            return;
        }

        Assert.Equal(0, c.Reader.Count);
        for (int i = 1; i <= 10; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
            Assert.Equal(i, c.Reader.Count);
        }

        c.Writer.Complete();
        Assert.Equal(10, c.Reader.Count);
        for (int i = 9; i >= 0; i--)
        {
            Assert.True(c.Reader.TryRead(out _));
            Assert.Equal(i, c.Reader.Count);
        }
    }

    [SkippableFact]
    public async Task Unbounded_Item31_Completion_waits_for_a_drain_across_many_chunks()
    {
        Skip.IfNot(Unbounded, "an unbounded channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        for (int i = 0; i < 9; i++)
        {
            Assert.True(c.Writer.TryWrite(i));
        }

        c.Writer.Complete();
        for (int i = 0; i < 9; i++)
        {
            Assert.False(c.Reader.Completion.IsCompleted);
            if (CanPeek)
            {
                Assert.True(c.Reader.TryPeek(out int peeked));
                Assert.Equal(i, peeked);
            }

            Assert.Equal(i, await c.Reader.ReadAsync());
        }

        await c.Reader.Completion.WaitAsync(Generous);
        Assert.False(await c.Reader.WaitToReadAsync());
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Every item <paramref name="reader"/> has now, in order.</summary>
    protected static List<int> Drain(ChannelReader<int> reader)
    {
        var items = new List<int>();
        while (reader.TryRead(out int item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>
    /// The error given to <c>Complete(ex)</c> as an observer sees it: the same object in one process,
    /// a stand-in with its type name and message in another.
    /// </summary>
    protected void AssertSameError(Exception expected, Exception? actual)
    {
        Assert.NotNull(actual);
        if (ErrorObjectsCrossAsIs)
        {
            Assert.Same(expected, actual);
        }
        else if (!ReferenceEquals(expected, actual))
        {
            // Across processes: an observer in the process that completed the channel (the local writer
            // of a remote-reader flavour) still sees the object itself; any other sees the stand-in.
            Assert.Contains(expected.GetType().FullName!, actual.Message, StringComparison.Ordinal);
            Assert.Contains(expected.Message, actual.Message, StringComparison.Ordinal);
        }
    }
}
