using System.Runtime.CompilerServices;
using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// An event count on two 32-bit shared words: a sequence (the futex word) and a waiter count. It lets
/// a thread sleep until "something changed" without a lost wake-up, while a signaller that nobody
/// waits for pays one fence and one read of a line nobody writes.
/// </summary>
/// <remarks>
/// The protocol (a waiter W, a signaller S publishing a change the waiter's condition looks at):
/// <code>
/// W: token = seq; waiters++ (full fence); if (condition) { waiters--; done } FUTEX_WAIT(seq, token); waiters--
/// S: publish; full fence; if (waiters != 0) { seq++; FUTEX_WAKE(seq, all) }
/// </code>
/// Why no wake-up is lost: both sides store, fence, then load (Dekker). Either S's load sees W's
/// increment, and then S bumps seq, so W's FUTEX_WAIT(token) returns at once if it had not slept yet
/// (the kernel compares seq with token atomically with queueing) or is woken if it had; or S's load came
/// first, and then W's re-check after its own fence sees what S published and W does not sleep.
/// A waiter that dies leaves the count high: signallers then wake for nothing until the count is reset,
/// which costs a syscall but never a missed wake-up; a holder with a <see cref="Ledger"/> records its
/// announcement where the survivors take it back (channels: at the next attach or ReclaimDeadProcesses).
/// Broadcast wake: every waiter re-checks its own condition; waking one could hand the wake to a waiter
/// whose condition is still false.
/// </remarks>
internal sealed class EventCount
{
    private readonly SegmentMemory _memory;
    private readonly long _sequenceOffset;
    private readonly long _waitersOffset;

    public EventCount(SegmentMemory memory, long sequenceOffset, long waitersOffset)
    {
        _memory = memory;
        _sequenceOffset = sequenceOffset;
        _waitersOffset = waitersOffset;
        _ = memory.Int32(sequenceOffset);
        _ = memory.Int32(waitersOffset);
    }

    public SegmentMemory Memory => _memory;

    /// <summary>
    /// The kernel semaphore that wakes this event count's sleepers instead of the futex word, or null for
    /// the futex (the default). Set by the owner before anyone waits through this instance; the sequence
    /// moves with every signal either way.
    /// </summary>
    public SemaphoreNotifier? Notifier { get; set; }

    /// <summary>
    /// The holder's share of the waiter count, or null for a count every waiter moves by one (the default).
    /// Set by the owner before anyone waits through this instance (see <see cref="WaiterLedger"/>).
    /// </summary>
    public WaiterLedger? Ledger { get; set; }

    /// <summary>The futex word's offset in the segment.</summary>
    public long SequenceOffset => _sequenceOffset;

    /// <summary>The futex word.</summary>
    public ref int Sequence => ref _memory.Int32(_sequenceOffset);

    /// <summary>How many waiters have announced themselves (any process).</summary>
    public int Waiters => Volatile.Read(ref _memory.Int32(_waitersOffset));

    /// <summary>
    /// Announces a waiter and returns the token to sleep on. The caller must re-check its condition
    /// after this and then either <see cref="CancelWait"/> (condition true) or wait with the token.
    /// </summary>
    public int PrepareWait()
    {
        int token = Volatile.Read(ref Sequence);
        // Interlocked: the full fence between announcing and the caller's re-check (the Dekker half of the waiter).
        if (Ledger is { } ledger)
        {
            ledger.Announce(ref _memory.Int32(_waitersOffset));
        }
        else
        {
            Interlocked.Increment(ref _memory.Int32(_waitersOffset));
        }

        return token;
    }

    /// <summary>Withdraws the announcement of <see cref="PrepareWait"/>.</summary>
    public void CancelWait()
    {
        if (Ledger is { } ledger)
        {
            ledger.Withdraw(ref _memory.Int32(_waitersOffset));
        }
        else
        {
            Interlocked.Decrement(ref _memory.Int32(_waitersOffset));
        }
    }

    /// <summary>
    /// Sleeps in the kernel while the sequence still equals <paramref name="token"/>, then withdraws the
    /// announcement. Returns false on timeout. Spurious returns are possible: callers re-check.
    /// </summary>
    public bool Wait(int token, TimeSpan? timeout)
    {
        try
        {
            if (Notifier is { } notifier)
            {
                return Volatile.Read(ref Sequence) != token || notifier.Semaphore.Wait(timeout);
            }

            return PlatformServices.Futex.Wait(ref Sequence, token, timeout);
        }
        finally
        {
            CancelWait();
        }
    }

    /// <summary>
    /// Waits asynchronously on the process's waiter thread while the sequence equals
    /// <paramref name="token"/>; withdraws the announcement when done or canceled. No thread blocks.
    /// </summary>
    public ValueTask<bool> WaitAsync(int token, CancellationToken cancellationToken = default) =>
        WaitAsync(token, null, runContinuationsAsynchronously: true, cancellationToken);

    /// <summary>As <see cref="WaitAsync(int, CancellationToken)"/>, completing with false when <paramref name="timeout"/> passes first.</summary>
    public ValueTask<bool> WaitAsync(int token, TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        WaitAsync(token, timeout, runContinuationsAsynchronously: true, cancellationToken);

    /// <summary>The general form: a timeout (null: none), and whether continuations may run on the waking thread.</summary>
    public ValueTask<bool> WaitAsync(int token, TimeSpan? timeout, bool runContinuationsAsynchronously, CancellationToken cancellationToken) =>
        Notifier is { } notifier
            ? notifier.WaitAsync(this, token, timeout, runContinuationsAsynchronously, cancellationToken)
            : AsyncWaiter.Shared.WaitAsync(this, token, timeout, runContinuationsAsynchronously, cancellationToken);

    /// <summary>As <see cref="WaitAsync(int, CancellationToken)"/>, choosing whether continuations may run on the waiter thread.</summary>
    public ValueTask<bool> WaitAsync(int token, bool runContinuationsAsynchronously, CancellationToken cancellationToken) =>
        WaitAsync(token, null, runContinuationsAsynchronously, cancellationToken);

    /// <summary>
    /// The start every asynchronous wait on an event count shares: completes it at once (withdrawing the
    /// announcement) when it is canceled, when the sequence moved past <paramref name="token"/>, or when
    /// <paramref name="timeout"/> is not positive; otherwise gives the deadline (a TickCount64, or
    /// <see cref="long.MaxValue"/> for none) and returns false.
    /// </summary>
    public bool TryCompleteAtOnce(int token, TimeSpan? timeout, CancellationToken cancellationToken, out ValueTask<bool> result, out long deadline)
    {
        deadline = long.MaxValue;
        if (cancellationToken.IsCancellationRequested)
        {
            CancelWait();
            result = ValueTask.FromCanceled<bool>(cancellationToken);
            return true;
        }

        if (Volatile.Read(ref Sequence) != token)
        {
            CancelWait();
            result = new ValueTask<bool>(true);
            return true;
        }

        if (timeout is { } limit)
        {
            if (limit <= TimeSpan.Zero)
            {
                CancelWait();
                result = new ValueTask<bool>(false);
                return true;
            }

            deadline = Environment.TickCount64 + (long)Math.Ceiling(Math.Min(limit.TotalMilliseconds, int.MaxValue));
        }

        result = default;
        return false;
    }

    /// <summary>
    /// Wakes every waiter without bumping the sequence, for an event count whose futex word is itself the
    /// state that changed (the caller has just changed it). Same fence-then-count protocol as <see cref="Signal"/>.
    /// </summary>
    public void WakeAll()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _memory.Int32(_waitersOffset)) != 0)
        {
            PlatformServices.Futex.Wake(ref Sequence, int.MaxValue);
        }
    }

    /// <summary>
    /// Wakes every waiter, if any announced itself. Call after publishing the change waiters look for.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void Signal()
    {
        // The signaller's Dekker half: the publish before this must be visible before we read the count.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _memory.Int32(_waitersOffset)) != 0)
        {
            Wake();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Wake()
    {
        Interlocked.Increment(ref Sequence);
        if (Notifier is { } notifier)
        {
            notifier.Post(Waiters);
            return;
        }

        PlatformServices.Futex.Wake(ref Sequence, int.MaxValue);
    }
}
