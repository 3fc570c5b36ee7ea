using System.Diagnostics;
using System.Threading.Tasks.Sources;
using SharedMemChannels.Platform;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// The process's asynchronous waits on shared futex words, served without a thread per wait: one
/// background thread (another for every further 127 words) sleeps on all watched words at once with
/// <see cref="IWaitOnAddress.WaitAny"/> (<c>futex_waitv</c>) plus a process-local doorbell word, and
/// completes pooled <see cref="IValueTaskSource{TResult}"/>s when a word moves.
/// </summary>
/// <remarks>
/// Why the doorbell: a new word can only join the kernel's wait set by re-entering the call, so
/// registering a wait on a word the thread does not watch yet bumps the doorbell (which is in the set)
/// and wakes the thread, which rebuilds its set. A wait on a word already watched with the same token
/// needs no wake at all. Everything the threads and registrars share (the tables, the pools) is under
/// one lock held only for table updates; completions run after it is released, and continuations run
/// asynchronously by default so that user code never runs on a waiter thread. Registrations, word
/// buckets and the tables are pooled and reused: a steady stream of waits allocates nothing.
/// Words must stay mapped while waits on them are pending: whoever unmaps a segment cancels first.
/// </remarks>
internal sealed class AsyncWaiter
{
    private readonly IWaitOnAddress _futex;
    private readonly int _wordsPerThread;
    private readonly Lock _lock = new();

    /// <summary>
    /// Completions in progress outside the lock (a registration detached and being completed, a
    /// cancellation being delivered): each may still touch its word, and run an inline continuation
    /// that touches the memory around it. <see cref="FailWaits"/> waits for them before the memory goes.
    /// </summary>
    private int _completing;

    /// <summary>How many of <see cref="_completing"/> this thread is running (so that it never waits for itself).</summary>
    [ThreadStatic]
    private static int t_completing;
    private readonly List<WaiterThread> _threads = [];
    private readonly Stack<Registration> _registrations = new();
    private readonly Stack<Bucket> _buckets = new();
    private int _pending;
    private int _timed; // pending registrations with a deadline: the threads look at deadlines only when there are some

    internal AsyncWaiter(IWaitOnAddress futex)
    {
        _futex = futex;
        _wordsPerThread = Math.Min(futex.MaxWaitAny, 128) - 1; // one entry of each set is the doorbell
    }

    /// <summary>The process's waiter.</summary>
    public static AsyncWaiter Shared { get; } = new(PlatformServices.Futex);

    /// <summary>Whether this thread is completing waits (a continuation run synchronously may be user code).</summary>
    public static bool IsCompletingHere => t_completing > 0;

    /// <summary>Waits registered and not yet completed or canceled.</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _pending;
            }
        }
    }

    /// <summary>Distinct words watched by all waiter threads.</summary>
    public int WatchedWordCount
    {
        get
        {
            lock (_lock)
            {
                int words = 0;
                foreach (WaiterThread thread in _threads)
                {
                    words += thread.Buckets.Count;
                }

                return words;
            }
        }
    }

    /// <summary>Waiter threads started so far.</summary>
    public int ThreadCount
    {
        get
        {
            lock (_lock)
            {
                return _threads.Count;
            }
        }
    }

    /// <summary>Managed bytes the waiter threads have allocated (each thread's own count at its last sleep), for tests.</summary>
    public long ThreadsAllocatedBytes
    {
        get
        {
            lock (_lock)
            {
                long total = 0;
                foreach (WaiterThread thread in _threads)
                {
                    total += thread.AllocatedBytes;
                }

                return total;
            }
        }
    }

    /// <summary>
    /// Completes (true) when the event count's sequence differs from <paramref name="token"/>, which
    /// <see cref="EventCount.PrepareWait"/> returned; withdraws that announcement when done. Canceling
    /// removes the registration and completes with <see cref="OperationCanceledException"/>.
    /// </summary>
    public ValueTask<bool> WaitAsync(EventCount events, int token, bool runContinuationsAsynchronously, CancellationToken cancellationToken) =>
        WaitAsync(events, token, null, runContinuationsAsynchronously, cancellationToken);

    /// <summary>
    /// As <see cref="WaitAsync(EventCount, int, bool, CancellationToken)"/>, completing with false when
    /// <paramref name="timeout"/> passes first. A caller that waits on something a peer may never signal
    /// (a claim whose holder may die) bounds its wait this way and re-checks.
    /// </summary>
    public ValueTask<bool> WaitAsync(EventCount events, int token, TimeSpan? timeout, bool runContinuationsAsynchronously, CancellationToken cancellationToken)
    {
        if (events.TryCompleteAtOnce(token, timeout, cancellationToken, out ValueTask<bool> done, out long deadline))
        {
            return done;
        }

        nint address = SegmentMemory.AddressOf(ref events.Sequence);
        Registration registration;
        Registration? stale = null;
        WaiterThread thread;
        bool ring = false;
        lock (_lock)
        {
            if (events.Memory.IsClosed)
            {
                // The segment is being detached and its waits were failed: a retry that comes after must
                // not watch a word that is about to be unmapped.
                events.CancelWait();
                return ValueTask.FromException<bool>(new ObjectDisposedException(nameof(SharedSegment), $"Segment '{events.Memory.Name}' was disposed while the operation waited."));
            }

            registration = _registrations.Count > 0 ? _registrations.Pop() : new Registration(this);
            registration.Prepare(events, deadline, runContinuationsAsynchronously);
            thread = ThreadFor(address, out Bucket? bucket);
            if (bucket is null)
            {
                bucket = _buckets.Count > 0 ? _buckets.Pop() : new Bucket();
                bucket.Reset(events.Memory, events.SequenceOffset, address, token);
                bucket.Thread = thread;
                thread.Buckets.Add(address, bucket);
                ring = true;
            }
            else if (deadline != long.MaxValue)
            {
                ring = true; // the thread must learn the new deadline
            }

            if (bucket.Expected != token)
            {
                // The word moved on since the waits in this bucket were registered: they are due now.
                // Complete them here and watch the word under the new token.
                stale = bucket.DetachAll(null);
                Unpend(stale);
                BeginCompleting();
                bucket.Expected = token;
                ring = true;
            }

            bucket.Add(registration);
            _pending++;
            if (deadline != long.MaxValue)
            {
                _timed++;
            }
        }

        if (stale is not null)
        {
            try
            {
                CompleteChain(stale);
            }
            finally
            {
                EndCompleting();
            }
        }

        if (cancellationToken.CanBeCanceled)
        {
            registration.Cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((Registration)state!).Cancel(token), registration);
        }

        if (ring)
        {
            thread.Ring();
        }

        return new ValueTask<bool>(registration, registration.Version);
    }

    /// <summary>The thread that watches <paramref name="address"/>, or one with room for it (started if needed). Under the lock.</summary>
    private WaiterThread ThreadFor(nint address, out Bucket? bucket)
    {
        WaiterThread? roomy = null;
        foreach (WaiterThread candidate in _threads)
        {
            if (candidate.Buckets.TryGetValue(address, out bucket))
            {
                return candidate;
            }

            if (roomy is null && candidate.Buckets.Count < _wordsPerThread)
            {
                roomy = candidate;
            }
        }

        bucket = null;
        if (roomy is null)
        {
            roomy = new WaiterThread(this, _threads.Count);
            _threads.Add(roomy);
            roomy.Start();
        }

        return roomy;
    }

    /// <summary>
    /// Fails, with <paramref name="error"/>, every pending wait on a word of <paramref name="memory"/> in
    /// [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>), and stops
    /// watching those words. Called before the words go away (a channel detached, a segment unmapped),
    /// so that the waiter threads never read memory that is no longer mapped.
    /// </summary>
    public void FailWaits(SegmentMemory memory, long start, long length, Exception error, bool close = false)
    {
        Registration? failed = null;
        List<WaiterThread>? ring = null;
        lock (_lock)
        {
            if (close)
            {
                memory.IsClosed = true;
            }

            foreach (WaiterThread thread in _threads)
            {
                List<nint>? gone = null;
                foreach (KeyValuePair<nint, Bucket> entry in thread.Buckets)
                {
                    Bucket bucket = entry.Value;
                    if (ReferenceEquals(bucket.Memory, memory) && bucket.Offset >= start && bucket.Offset - start < length)
                    {
                        failed = bucket.DetachAll(failed);
                        (gone ??= []).Add(entry.Key);
                    }
                }

                if (gone is not null)
                {
                    foreach (nint address in gone)
                    {
                        _buckets.Push(thread.Buckets[address]);
                        thread.Buckets.Remove(address);
                    }

                    (ring ??= []).Add(thread);
                }
            }

            Unpend(failed);
        }

        if (ring is not null)
        {
            foreach (WaiterThread thread in ring)
            {
                thread.Ring();
            }
        }

        while (failed is not null)
        {
            Registration next = failed.Next!;
            failed.Next = null;
            failed.Fail(error);
            failed = next;
        }

        // Completions already detached by another thread may still touch these words (and run inline
        // continuations on them): the memory must outlive them.
        var spinner = default(SpinWait);
        while (Volatile.Read(ref _completing) > t_completing)
        {
            spinner.SpinOnce(sleep1Threshold: 20);
        }
    }

    private void BeginCompleting()
    {
        Interlocked.Increment(ref _completing);
        t_completing++;
    }

    private void EndCompleting()
    {
        t_completing--;
        Interlocked.Decrement(ref _completing);
    }

    /// <summary>Takes a detached chain off the pending counts. Under the lock.</summary>
    private void Unpend(Registration? chain)
    {
        for (; chain is not null; chain = chain.Next)
        {
            _pending--;
            if (chain.Deadline != long.MaxValue)
            {
                _timed--;
            }
        }
    }

    /// <summary>Completes a detached chain of registrations. Never under the lock: completing may run continuations.</summary>
    private static void CompleteChain(Registration? chain)
    {
        while (chain is not null)
        {
            Registration next = chain.Next!;
            chain.Next = null;
            chain.Complete();
            chain = next;
        }
    }

    /// <summary>One pending wait: a pooled value-task source.</summary>
    private sealed class Registration : IValueTaskSource<bool>
    {
        private readonly AsyncWaiter _owner;
        private ManualResetValueTaskSourceCore<bool> _core;
        private EventCount? _events;
        private int _done;
        private int _continuation; // SingleContinuation's flag

        public Registration(AsyncWaiter owner) => _owner = owner;

        public Bucket? Bucket;
        public Registration? Next;
        public Registration? Previous;
        public CancellationTokenRegistration Cancellation;

        /// <summary>When the wait gives up (<see cref="Environment.TickCount64"/>), or <see cref="long.MaxValue"/>.</summary>
        public long Deadline;

        /// <summary>Set (under the lock) when the deadline passed: completes with false.</summary>
        public bool TimedOut;

        public short Version => _core.Version;

        public void Prepare(EventCount events, long deadline, bool runContinuationsAsynchronously)
        {
            _events = events;
            _done = 0;
            Deadline = deadline;
            TimedOut = false;
            _core.RunContinuationsAsynchronously = runContinuationsAsynchronously;
        }

        /// <summary>The word moved (or the deadline passed): withdraw the announcement and complete, unless cancellation got here first.</summary>
        public void Complete()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                _events!.CancelWait();
                _core.SetResult(!TimedOut);
            }
        }

        /// <summary>Completes with <paramref name="error"/>, unless completion got here first (the registration is already unlinked).</summary>
        public void Fail(Exception error)
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                _events!.CancelWait();
                _core.SetException(error);
            }
        }

        /// <summary>Removes the registration (if still registered) and completes canceled, unless completion got here first.</summary>
        public void Cancel(CancellationToken token)
        {
            _owner.BeginCompleting();
            try
            {
                CancelCore(token);
            }
            finally
            {
                _owner.EndCompleting();
            }
        }

        private void CancelCore(CancellationToken token)
        {
            WaiterThread? ring = null;
            lock (_owner._lock)
            {
                if (Bucket is { } bucket)
                {
                    _owner._pending--;
                    if (Deadline != long.MaxValue)
                    {
                        _owner._timed--;
                    }

                    if (bucket.Remove(this))
                    {
                        // The word's last wait is gone: stop watching it, and wake the thread so that it
                        // drops the word from its kernel wait set.
                        ring = bucket.Thread;
                        bucket.Thread!.Buckets.Remove(bucket.Address);
                        _owner._buckets.Push(bucket);
                    }
                }
            }

            ring?.Ring();
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                _events!.CancelWait();
                _core.SetException(new OperationCanceledException(token));
            }
        }

        public bool GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                // Dispose before pooling: a cancellation callback must never reach a reused registration.
                Cancellation.Dispose();
                Cancellation = default;
                _events = null;
                _core.Reset();
                _continuation = 0;
                lock (_owner._lock)
                {
                    _owner._registrations.Push(this);
                }
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            Common.SingleContinuation.Claim(ref _continuation, token, _core.Version);
            _core.OnCompleted(continuation, state, token, flags);
        }
    }

    /// <summary>The waits on one word, with the value they sleep under. Pooled.</summary>
    private sealed class Bucket
    {
        private Registration? _head;

        public SegmentMemory? Memory;
        public long Offset;
        public nint Address;
        public int Expected;
        public WaiterThread? Thread;

        public void Reset(SegmentMemory memory, long offset, nint address, int expected)
        {
            Memory = memory;
            Offset = offset;
            Address = address;
            Expected = expected;
            _head = null;
        }

        /// <summary>Whether the word still holds the value the waits sleep under.</summary>
        public bool Unchanged => Volatile.Read(ref Memory!.Int32(Offset)) == Expected;

        public void Add(Registration registration)
        {
            registration.Bucket = this;
            registration.Previous = null;
            registration.Next = _head;
            if (_head is not null)
            {
                _head.Previous = registration;
            }

            _head = registration;
        }

        /// <summary>Unlinks one registration; true when the bucket is now empty.</summary>
        public bool Remove(Registration registration)
        {
            if (registration.Previous is not null)
            {
                registration.Previous.Next = registration.Next;
            }
            else
            {
                _head = registration.Next;
            }

            if (registration.Next is not null)
            {
                registration.Next.Previous = registration.Previous;
            }

            registration.Bucket = null;
            registration.Next = registration.Previous = null;
            return _head is null;
        }

        /// <summary>
        /// Unlinks the registrations whose deadline passed, chaining them (marked timed out) in front of
        /// <paramref name="expired"/>, and lowers <paramref name="next"/> to the earliest deadline left.
        /// </summary>
        public Registration? Expire(long now, Registration? expired, ref long next)
        {
            Registration? current = _head;
            while (current is not null)
            {
                Registration? following = current.Next;
                if (current.Deadline <= now)
                {
                    Remove(current);
                    current.TimedOut = true;
                    current.Next = expired;
                    expired = current;
                }
                else
                {
                    next = Math.Min(next, current.Deadline);
                }

                current = following;
            }

            return expired;
        }

        public bool IsEmpty => _head is null;

        /// <summary>Unlinks every registration and returns them chained (through Next) in front of <paramref name="chain"/>.</summary>
        public Registration? DetachAll(Registration? chain)
        {
            Registration? current = _head;
            _head = null;
            while (current is not null)
            {
                Registration? next = current.Next;
                current.Bucket = null;
                current.Previous = null;
                current.Next = chain;
                chain = current;
                current = next;
            }

            return chain;
        }
    }

    /// <summary>One background thread sleeping on up to 127 words and its own doorbell.</summary>
    private sealed class WaiterThread
    {
        private readonly AsyncWaiter _owner;
        private readonly int[] _doorbell = GC.AllocateArray<int>(1, pinned: true); // pinned: the kernel gets its address
        private readonly nint _doorbellAddress;
        private readonly WaitTarget[] _targets;
        private readonly List<Bucket> _finished = [];
        private readonly Thread _thread;
        private long _allocatedBytes;

        public WaiterThread(AsyncWaiter owner, int index)
        {
            _owner = owner;
            _doorbellAddress = SegmentMemory.AddressOf(ref _doorbell[0]);
            _targets = new WaitTarget[owner._wordsPerThread + 1];
            _thread = new Thread(Run) { IsBackground = true, Name = $"SharedMemChannels waiter {index}" };
        }

        public Dictionary<nint, Bucket> Buckets { get; } = [];

        public long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

        public void Start() => _thread.Start();

        /// <summary>Makes the thread rebuild its wait set.</summary>
        public void Ring()
        {
            Interlocked.Increment(ref _doorbell[0]);
            _owner._futex.Wake(ref _doorbell[0], 1);
        }

        private void Run()
        {
            while (true)
            {
                Registration? due = null;
                Registration? expired = null;
                long nextDeadline = long.MaxValue;
                int count = 0;
                lock (_owner._lock)
                {
                    long now = _owner._timed > 0 ? Environment.TickCount64 : 0;
                    // The doorbell's value is read before the words: a registration after this read rings
                    // it, so the kernel call below returns at once instead of missing the new word.
                    _targets[count++] = new WaitTarget(_doorbellAddress, Volatile.Read(ref _doorbell[0]));
                    foreach (KeyValuePair<nint, Bucket> entry in Buckets)
                    {
                        Bucket bucket = entry.Value;
                        if (bucket.Unchanged)
                        {
                            if (_owner._timed > 0)
                            {
                                expired = bucket.Expire(now, expired, ref nextDeadline);
                                if (bucket.IsEmpty)
                                {
                                    _finished.Add(bucket);
                                    continue;
                                }
                            }

                            _targets[count++] = new WaitTarget(entry.Key, bucket.Expected);
                        }
                        else
                        {
                            due = bucket.DetachAll(due);
                            _finished.Add(bucket);
                        }
                    }

                    foreach (Bucket bucket in _finished)
                    {
                        Buckets.Remove(bucket.Address);
                        _owner._buckets.Push(bucket);
                    }

                    _finished.Clear();
                    _owner.Unpend(due);
                    _owner.Unpend(expired);
                    _owner.BeginCompleting();
                }

                // Recorded before the completions (which wake the test that reads it) and again after them.
                Volatile.Write(ref _allocatedBytes, GC.GetAllocatedBytesForCurrentThread());
                try
                {
                    CompleteChain(due);
                    CompleteChain(expired);
                }
                finally
                {
                    _owner.EndCompleting();
                }

                Volatile.Write(ref _allocatedBytes, GC.GetAllocatedBytesForCurrentThread());
                try
                {
                    TimeSpan? sleep = nextDeadline == long.MaxValue ? null : TimeSpan.FromMilliseconds(Math.Max(nextDeadline - Environment.TickCount64, 0));
                    _owner._futex.WaitAny(_targets.AsSpan(0, count), sleep);
                }
                catch (Exception e) when (e is IOException or ArgumentException)
                {
                    // A word of the set was unmapped between building the set and this call (its waits were
                    // failed and its bucket removed by FailWaits, which rang the doorbell): the next pass
                    // rebuilds the set without it. Never spin on a failing call.
                    Thread.Sleep(1);
                }
            }
        }
    }
}
