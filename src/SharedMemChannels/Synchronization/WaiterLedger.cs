namespace SharedMemChannels.Synchronization;

/// <summary>
/// One holder's share of an <see cref="EventCount"/>'s waiter count, kept so that a holder that dies
/// while waiting can be taken off by the survivors. Its waiters (any number of threads and pending
/// operations) count locally; the shared count carries one announcement for all of them, made when the
/// first announces and withdrawn when the last leaves, and the holder records it in a row of its own in
/// the segment (<see cref="WaiterLedger(Action{bool})"/>'s callback). A dead holder's announcement is then
/// in its row for whoever reclaims the dead to take back; without the ledger, each waiter of a killed
/// process left the count one higher for good, and every signal after paid a wake-up syscall for it.
/// </summary>
/// <remarks>
/// The event count's protocol holds: a waiter that finds others of its holder announced already relies
/// on their announcement, which stays until the last of them withdraws, and a signaller that reads the
/// count after publishing sees it (the full fence here keeps the waiter's re-check after its token read).
/// Order against a crash: announce = increment, then record; withdraw = unrecord, then decrement. A
/// holder killed between the two steps leaves the count one higher (as before), never lower: a recorded
/// announcement is always in the count, so taking it back can never hide a live waiter.
/// </remarks>
internal sealed class WaiterLedger
{
    private readonly object _lock = new();
    private readonly Action<bool> _record;
    private int _local;

    /// <summary>Makes a ledger that records the holder's announcement with <paramref name="record"/> (true: announced).</summary>
    public WaiterLedger(Action<bool> record) => _record = record;

    /// <summary>Announces one more waiter of this holder on <paramref name="waiters"/> (the shared count).</summary>
    public void Announce(ref int waiters)
    {
        lock (_lock)
        {
            if (_local++ == 0)
            {
                Interlocked.Increment(ref waiters);
                _record(true);
            }
            else
            {
                Interlocked.MemoryBarrier();
            }
        }
    }

    /// <summary>Withdraws one waiter of this holder; the holder's announcement goes with its last one.</summary>
    public void Withdraw(ref int waiters)
    {
        lock (_lock)
        {
            if (_local == 0)
            {
                // Announced before the ledger was set: withdrawn as it was made.
                Interlocked.Decrement(ref waiters);
                return;
            }

            if (--_local == 0)
            {
                _record(false);
                Interlocked.Decrement(ref waiters);
            }
        }
    }
}
