using System.Diagnostics;
using System.Globalization;
using SharedMemChannels.Platform;
using SharedMemChannels.Synchronization;
using SharedMemChannels.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharedMemChannels.Tests;

/// <summary>Runs alone: it counts the process's threads.</summary>
[CollectionDefinition(nameof(WaiterTests), DisableParallelization = true)]
public sealed class WaiterTestsRunAlone
{
}

/// <summary>The event count and the process's waiter thread.</summary>
[Collection(nameof(WaiterTests))]
public class WaiterTests : SegmentTest
{
    // The ping-pong block: the counter and two event counts, one line each (as the test host's role expects).
    private const int Counter = 0;
    private const int PingEvent = 128;
    private const int PongEvent = 256;

    private static readonly TimeSpan Generous = ChildProcess.DefaultWait;

    private readonly ITestOutputHelper _output;

    public WaiterTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Signal_with_nobody_waiting_leaves_the_futex_word_alone()
    {
        SharedSegment segment = NewSegment("ec");
        long block = RingBlocks.Allocate(segment, 256);
        var events = new EventCount(segment.Memory, block, block + 4);
        for (int i = 0; i < 1000; i++)
        {
            events.Signal();
        }

        Assert.Equal(0, Volatile.Read(ref events.Sequence));
        int token = events.PrepareWait();
        Assert.Equal(1, events.Waiters);
        events.Signal();
        Assert.NotEqual(token, Volatile.Read(ref events.Sequence));
        Assert.True(events.Wait(token, Generous)); // the word moved: returns at once
        Assert.Equal(0, events.Waiters);
    }

    [Fact]
    public void Ping_pong_between_two_threads_loses_no_wakeup()
    {
        SharedSegment segment = NewSegment("ec");
        long block = RingBlocks.Allocate(segment, 512);
        const int Rounds = 20_000;
        var ping = new EventCount(segment.Memory, block + PingEvent, block + PingEvent + 4);
        var pong = new EventCount(segment.Memory, block + PongEvent, block + PongEvent + 4);
        string? failure = null;
        var ponger = new Thread(() =>
        {
            for (int r = 0; r < Rounds && failure is null; r++)
            {
                if (!WaitFor(segment, block, ping, (2 * r) + 1))
                {
                    failure = $"pong side lost a wake-up in round {r}";
                    return;
                }

                Volatile.Write(ref segment.Memory.Int32(block + Counter), (2 * r) + 2);
                pong.Signal();
            }
        });
        ponger.Start();
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < Rounds && failure is null; r++)
        {
            Volatile.Write(ref segment.Memory.Int32(block + Counter), (2 * r) + 1);
            ping.Signal();
            Assert.True(WaitFor(segment, block, pong, (2 * r) + 2), $"ping side lost a wake-up in round {r}");
        }

        _output.WriteLine($"thread ping-pong: {clock.Elapsed.TotalMicroseconds / Rounds:F2} us per round trip (information, not asserted)");
        JoinOrAbandon([ponger], segment);
        Assert.Null(failure);
        Assert.Equal(0, ping.Waiters);
        Assert.Equal(0, pong.Waiters);
    }

    [Fact]
    public void Ping_pong_between_two_processes_loses_no_wakeup()
    {
        SharedSegment segment = NewSegment("ec");
        long block = RingBlocks.Allocate(segment, 512);
        const int Rounds = 5_000;
        var ping = new EventCount(segment.Memory, block + PingEvent, block + PingEvent + 4);
        var pong = new EventCount(segment.Memory, block + PongEvent, block + PongEvent + 4);
        ChildProcess child = Host("ec-pong", segment.Name, block.ToString(CultureInfo.InvariantCulture), Rounds.ToString(CultureInfo.InvariantCulture));
        child.WaitForLine("ready");
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < Rounds; r++)
        {
            Volatile.Write(ref segment.Memory.Int32(block + Counter), (2 * r) + 1);
            ping.Signal();
            Assert.True(WaitFor(segment, block, pong, (2 * r) + 2), $"lost a wake-up in round {r}: {child.Transcript}");
        }

        _output.WriteLine($"process ping-pong: {clock.Elapsed.TotalMicroseconds / Rounds:F2} us per round trip (information, not asserted)");

        Assert.Equal($"done rounds={Rounds}", child.WaitForLine("done"));
        Assert.Equal(0, child.WaitForExit());
    }

    [Fact]
    public async Task An_async_wait_is_woken_by_another_process()
    {
        SharedSegment segment = NewSegment("ec");
        long block = RingBlocks.Allocate(segment, 512);
        var ping = new EventCount(segment.Memory, block + PingEvent, block + PingEvent + 4);
        var pong = new EventCount(segment.Memory, block + PongEvent, block + PongEvent + 4);
        ChildProcess child = Host("ec-pong", segment.Name, block.ToString(CultureInfo.InvariantCulture), "1");
        child.WaitForLine("ready");
        int token = pong.PrepareWait();
        ValueTask<bool> wait = pong.WaitAsync(token);
        Assert.False(wait.IsCompleted);
        Volatile.Write(ref segment.Memory.Int32(block + Counter), 1);
        ping.Signal();
        Assert.True(await wait.AsTask().WaitAsync(Generous));
        Assert.Equal(2, Volatile.Read(ref segment.Memory.Int32(block + Counter)));
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(0, pong.Waiters);
    }

    [Fact]
    public async Task WaitAsync_completes_when_another_thread_signals()
    {
        SharedSegment segment = NewSegment("ec");
        long block = RingBlocks.Allocate(segment, 256);
        var events = new EventCount(segment.Memory, block, block + 4);
        int token = events.PrepareWait();
        ValueTask<bool> wait = events.WaitAsync(token);
        Assert.False(wait.IsCompleted);
        var signaller = new Thread(events.Signal);
        signaller.Start();
        Assert.True(await wait.AsTask().WaitAsync(Generous));
        JoinOrAbandon([signaller], segment);
        Assert.Equal(0, events.Waiters);
    }

    [Fact]
    public async Task A_thousand_pending_waits_on_a_hundred_words_add_a_handful_of_threads_and_all_complete()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(PlatformServices.Futex);
        EventCount[] words = Words(segment, 100);
        int before = Process.GetCurrentProcess().Threads.Count;
        var pending = new List<Task<bool>>();
        for (int i = 0; i < 1000; i++)
        {
            EventCount events = words[i % words.Length];
            pending.Add(waiter.WaitAsync(events, events.PrepareWait(), runContinuationsAsynchronously: true, CancellationToken.None).AsTask());
        }

        WaitUntil(() => waiter.WatchedWordCount == 100, "the waiter watches all 100 words");
        int after = Process.GetCurrentProcess().Threads.Count;
        Assert.Equal(1, waiter.ThreadCount);
        Assert.True(after - before <= 4, $"{after - before} threads were added for 1,000 waits");
        _output.WriteLine($"threads before {before}, with 1,000 pending waits on 100 words {after}");
        Assert.Equal(1000, waiter.PendingCount);
        Assert.DoesNotContain(pending, t => t.IsCompleted);

        foreach (EventCount events in words)
        {
            events.Signal();
        }

        bool[] results = await Task.WhenAll(pending).WaitAsync(Generous);
        Assert.All(results, Assert.True);
        Assert.Equal(0, waiter.PendingCount);
        WaitUntil(() => waiter.WatchedWordCount == 0, "the waiter drops the words");
        Assert.All(words, w => Assert.Equal(0, w.Waiters));
    }

    [Fact]
    public async Task Without_futex_waitv_the_polling_fallback_still_completes_every_wait()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(new Platform.Linux.LinuxFutex { ForceWaitAnyFallback = true });
        EventCount[] words = Words(segment, 20);
        var pending = Enumerable.Range(0, 200).Select(i => waiter.WaitAsync(words[i % 20], words[i % 20].PrepareWait(), true, CancellationToken.None).AsTask()).ToList();
        WaitUntil(() => waiter.WatchedWordCount == 20, "all words watched");
        foreach (EventCount events in words.Reverse())
        {
            events.Signal();
        }

        Assert.All(await Task.WhenAll(pending).WaitAsync(Generous), Assert.True);
        Assert.Equal(0, waiter.PendingCount);
    }

    [Fact]
    public async Task More_words_than_one_futex_waitv_call_takes_use_a_few_more_threads()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(PlatformServices.Futex);
        EventCount[] words = Words(segment, 300);
        var pending = words.Select(w => waiter.WaitAsync(w, w.PrepareWait(), runContinuationsAsynchronously: true, CancellationToken.None).AsTask()).ToList();
        Assert.Equal(3, waiter.ThreadCount); // 127 words and a doorbell per thread
        WaitUntil(() => waiter.WatchedWordCount == 300, "all words watched");

        // Signal from the last word to the first: each thread must wake for its own words.
        for (int i = words.Length - 1; i >= 0; i--)
        {
            words[i].Signal();
        }

        Assert.All(await Task.WhenAll(pending).WaitAsync(Generous), Assert.True);
        Assert.Equal(0, waiter.PendingCount);
    }

    [Fact]
    public async Task Cancellation_removes_the_registration_and_spares_the_other_waits_on_the_word()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(PlatformServices.Futex);
        EventCount[] words = Words(segment, 3);
        using var cancel = new CancellationTokenSource();
        var canceled = new List<Task<bool>>();
        for (int i = 0; i < 10; i++)
        {
            EventCount events = words[i % 2]; // words 0 and 1: only canceled waits
            canceled.Add(waiter.WaitAsync(events, events.PrepareWait(), runContinuationsAsynchronously: true, cancel.Token).AsTask());
        }

        Task<bool> survivor = waiter.WaitAsync(words[2], words[2].PrepareWait(), runContinuationsAsynchronously: true, cancel.Token).AsTask();
        Task<bool> uncancelable = waiter.WaitAsync(words[0], words[0].PrepareWait(), runContinuationsAsynchronously: true, CancellationToken.None).AsTask();
        Assert.Equal(12, waiter.PendingCount);

        await cancel.CancelAsync();
        foreach (Task<bool> task in canceled.Append(survivor))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Generous));
        }

        Assert.Equal(1, waiter.PendingCount);
        Assert.Equal(1, waiter.WatchedWordCount); // words 1 and 2 are no longer watched
        Assert.Equal(1, words[0].Waiters);
        Assert.Equal(0, words[1].Waiters);
        Assert.Equal(0, words[2].Waiters);
        Assert.False(uncancelable.IsCompleted);

        words[0].Signal();
        Assert.True(await uncancelable.WaitAsync(Generous));
        Assert.Equal(0, waiter.PendingCount);
        Assert.Equal(0, words[0].Waiters);
        WaitUntil(() => waiter.WatchedWordCount == 0, "no word is watched");

        // An already canceled token never registers.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter.WaitAsync(words[1], words[1].PrepareWait(), true, cancel.Token).AsTask());
        Assert.Equal(0, waiter.PendingCount);
        Assert.Equal(0, words[1].Waiters);
    }

    [Fact]
    public async Task A_timed_wait_nobody_signals_completes_false_and_leaves_nothing_registered()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(PlatformServices.Futex);
        EventCount[] words = Words(segment, 2);
        Task<bool> forever = waiter.WaitAsync(words[0], words[0].PrepareWait(), null, true, CancellationToken.None).AsTask();
        Task<bool> timed = waiter.WaitAsync(words[0], words[0].PrepareWait(), TimeSpan.FromMilliseconds(20), true, CancellationToken.None).AsTask();
        Task<bool> alone = waiter.WaitAsync(words[1], words[1].PrepareWait(), TimeSpan.FromMilliseconds(30), true, CancellationToken.None).AsTask();
        Task<bool> signalled = waiter.WaitAsync(words[1], words[1].PrepareWait(), TimeSpan.FromDays(1), true, CancellationToken.None).AsTask();
        Assert.False(await timed.WaitAsync(Generous));
        Assert.False(await alone.WaitAsync(Generous));
        Assert.False(forever.IsCompleted);
        Assert.Equal(1, words[0].Waiters);
        Assert.Equal(1, words[1].Waiters);

        words[1].Signal();
        Assert.True(await signalled.WaitAsync(Generous));
        words[0].Signal();
        Assert.True(await forever.WaitAsync(Generous));
        Assert.Equal(0, waiter.PendingCount);
        Assert.All(words, w => Assert.Equal(0, w.Waiters));
        WaitUntil(() => waiter.WatchedWordCount == 0, "no word is watched");
        Assert.False(await waiter.WaitAsync(words[0], words[0].PrepareWait(), TimeSpan.Zero, true, CancellationToken.None));
        Assert.Equal(0, words[0].Waiters);
    }

    [Fact]
    public void Waiting_and_waking_allocate_nothing_in_steady_state()
    {
        SharedSegment segment = NewSegment("ec");
        var waiter = new AsyncWaiter(PlatformServices.Futex);
        EventCount[] words = Words(segment, 4);
        for (int i = 0; i < 2000; i++)
        {
            RoundTrip(waiter, words[i % words.Length]);
        }

        long waiterBefore = waiter.ThreadsAllocatedBytes;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            RoundTrip(waiter, words[i % words.Length]);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long waiterAllocated = waiter.ThreadsAllocatedBytes - waiterBefore;
        Assert.Equal(0, allocated);
        Assert.Equal(0, waiterAllocated);
    }

    private static void RoundTrip(AsyncWaiter waiter, EventCount events)
    {
        ValueTask<bool> wait = waiter.WaitAsync(events, events.PrepareWait(), runContinuationsAsynchronously: true, CancellationToken.None);
        events.Signal();
        var spinner = default(SpinWait);
        while (!wait.IsCompleted)
        {
            spinner.SpinOnce();
        }

        if (!wait.GetAwaiter().GetResult())
        {
            throw new InvalidOperationException("the wait said false");
        }
    }

    private static EventCount[] Words(SharedSegment segment, int count)
    {
        long block = RingBlocks.Allocate(segment, count * 128L);
        return Enumerable.Range(0, count).Select(i => new EventCount(segment.Memory, block + (i * 128L), block + (i * 128L) + 4)).ToArray();
    }

    /// <summary>The event-count waiter's loop: announce, re-check, sleep on the token.</summary>
    private static bool WaitFor(SharedSegment segment, long block, EventCount events, int wanted)
    {
        ref int counter = ref segment.Memory.Int32(block + Counter);
        while (Volatile.Read(ref counter) != wanted)
        {
            int token = events.PrepareWait();
            if (Volatile.Read(ref counter) == wanted)
            {
                events.CancelWait();
                return true;
            }

            if (!events.Wait(token, Generous))
            {
                return false;
            }
        }

        return true;
    }
}
