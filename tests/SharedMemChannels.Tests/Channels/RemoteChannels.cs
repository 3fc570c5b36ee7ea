using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// A test host child in the <c>channel-serve</c> role (tests/SharedMemChannels.TestHost/Roles/ChannelRoles.cs
/// describes the line protocol): it opens channels of one segment by request and runs the operations
/// this process forwards, each with a request id; the answers come back on its stdout and are
/// dispatched here by one thread. An operation that completed synchronously in the child completes
/// synchronously here; one that was pending there is pending here, and its cancellation is forwarded.
/// </summary>
internal sealed class ChannelHost
{
    private readonly ChildProcess _child;
    private readonly ConcurrentDictionary<long, IRemoteCall> _calls = new();
    private readonly ConcurrentDictionary<int, Action<int>> _dropped = new();
    private readonly object _sendLock = new();
    private readonly int _pid;
    private long _nextId;
    private int _nextChannel;
    private Exception? _ended;

    public ChannelHost(ChildProcess child)
    {
        _child = child;
        _pid = child.Pid;
        child.WaitForLine("ready");
        var dispatcher = new Thread(Dispatch) { IsBackground = true, Name = $"channel host {_pid}" };
        dispatcher.Start();
    }

    public string Transcript => _child.Transcript;

    /// <summary>Opens <paramref name="name"/> in the child, checking its stored options against <paramref name="spec"/>; items the child drops go to the spec's callback here.</summary>
    public int Open(string name, ChannelSpec spec)
    {
        int cid = Interlocked.Increment(ref _nextChannel);
        if (spec.ItemDropped is { } dropped)
        {
            _dropped[cid] = dropped;
        }

        string args = string.Create(CultureInfo.InvariantCulture, $"{name} {spec.Capacity} {spec.FullMode} {spec.SingleReader} {spec.SingleWriter}");
        Call(cid, "open", args, _ => true, CancellationToken.None).Sync();
        return cid;
    }

    /// <summary>Sends one request; the call object turns the answers into a result, a ValueTask or an exception.</summary>
    public RemoteCall<TResult> Call<TResult>(int cid, string op, string args, Func<string[], TResult> parse, CancellationToken token)
    {
        long id = Interlocked.Increment(ref _nextId);
        var call = new RemoteCall<TResult>(this, id, parse, token);
        _calls[id] = call;
        Send(string.Create(CultureInfo.InvariantCulture, $"{id} {op} {cid} {args}").TrimEnd());
        if (Volatile.Read(ref _ended) is { } ended && _calls.TryRemove(id, out _))
        {
            call.Fail(ended);
        }

        call.RegisterCancellation();
        return call;
    }

    public void Cancel(long id) => Send(string.Create(CultureInfo.InvariantCulture, $"cancel {id}"));

    private void Send(string line)
    {
        lock (_sendLock)
        {
            try
            {
                _child.Send(line);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
            {
                // The child is gone: the dispatcher fails every call when its output ends.
            }
        }
    }

    private void Dispatch()
    {
        Exception ended;
        try
        {
            DispatchLines();
            ended = new IOException($"The channel host child {_pid} ended. Its output:\n{_child.Transcript}");
        }
        catch (Exception e)
        {
            ended = new IOException($"The dispatcher of channel host child {_pid} failed. Its output:\n{_child.Transcript}", e);
        }

        Volatile.Write(ref _ended, ended);
        foreach (long id in _calls.Keys)
        {
            if (_calls.TryRemove(id, out IRemoteCall? call))
            {
                call.Fail(ended);
            }
        }
    }

    private void DispatchLines()
    {
        string? line;
        while ((line = _child.ReadLine()) is not null)
        {
            string[] w = line.Split(' ');
            if (w[0] == "dropped")
            {
                if (_dropped.TryGetValue(int.Parse(w[1], CultureInfo.InvariantCulture), out Action<int>? callback))
                {
                    // In order: the child reports a drop before it answers the write that dropped, so the
                    // callback has run here before that write returns here, as it would in one process.
                    try
                    {
                        callback(int.Parse(w[2], CultureInfo.InvariantCulture));
                    }
                    catch (Exception e)
                    {
                        // The test's callback failed: keep serving; the test sees what the callback recorded.
                        Console.Error.WriteLine($"itemDropped callback threw {e}");
                    }
                }

                continue;
            }

            if (w.Length < 2 || !long.TryParse(w[0], NumberStyles.None, CultureInfo.InvariantCulture, out long id) || !_calls.TryGetValue(id, out IRemoteCall? call))
            {
                continue; // not an answer (a diagnostic line)
            }

            if (w[1] == "pending")
            {
                call.MarkPending();
            }
            else
            {
                _calls.TryRemove(id, out _);
                call.Done(w[2..]);
            }
        }
    }

    // ---------------------------------------------------------------- encoding

    public static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static string Unb64(string text) => Encoding.UTF8.GetString(Convert.FromBase64String(text));

    /// <summary>
    /// The exception an "err TYPE MESSAGE64 [INNER_TYPE INNER_MESSAGE64]" answer stands for: the same type
    /// for the channel's own exceptions (closed, abandoned, canceled, invalid operation), carrying the
    /// remote original as a <see cref="RemoteChannelException"/>; a stand-in for anything else. A
    /// cancellation carries this process's token, as a canceled wait does in one process.
    /// </summary>
    public static Exception Rebuild(string[] err, CancellationToken token)
    {
        string type = err[1];
        string message = Unb64(err[2]);
        RemoteChannelException? inner = err.Length > 4 ? new RemoteChannelException(err[3], Unb64(err[4])) : null;
        var original = new RemoteChannelException(type, message);
        return type switch
        {
            "System.Threading.Channels.ChannelClosedException" => inner is null ? new ChannelClosedException(message) : new ChannelClosedException(message, inner),
            "SharedMemChannels.ChannelAbandonedException" => new ChannelAbandonedException(message, inner ?? original),
            "System.OperationCanceledException" or "System.Threading.Tasks.TaskCanceledException" => new OperationCanceledException(message, original, token),
            "System.InvalidOperationException" => new InvalidOperationException(message, original),
            _ => original,
        };
    }
}

/// <summary>What the dispatcher does with a call.</summary>
internal interface IRemoteCall
{
    void MarkPending();

    void Done(string[] result);

    void Fail(Exception error);
}

/// <summary>
/// One forwarded operation. Its first answer says whether it completed synchronously in the child;
/// a pending one completes later through this <see cref="IValueTaskSource"/> (consumable once, and
/// <c>GetResult</c> before completion throws, as the channel's own ValueTasks).
/// </summary>
internal sealed class RemoteCall<TResult> : IRemoteCall, IValueTaskSource<TResult>, IValueTaskSource
{
    private readonly ChannelHost _host;
    private readonly long _id;
    private readonly Func<string[], TResult> _parse;
    private readonly CancellationToken _token;
    private bool _first; // the first answer (done or pending) has come; guarded by _lock
    private readonly object _lock = new();
    private ManualResetValueTaskSourceCore<TResult> _core = new() { RunContinuationsAsynchronously = true };
    private int _continuation;
    private bool _pending;
    private bool _finished;
    private string[]? _syncResult;
    private Exception? _failure;
    private CancellationTokenRegistration _registration;

    public RemoteCall(ChannelHost host, long id, Func<string[], TResult> parse, CancellationToken token)
    {
        _host = host;
        _id = id;
        _parse = parse;
        _token = token;
    }

    /// <summary>Forwards a cancellation of the token to the child (after the request, so it arrives after it).</summary>
    public void RegisterCancellation()
    {
        if (!_token.CanBeCanceled)
        {
            return;
        }

        lock (_lock)
        {
            if (!_finished)
            {
                _registration = _token.UnsafeRegister(static state => ((RemoteCall<TResult>)state!).CancelRemote(), this);
            }
        }
    }

    private void CancelRemote() => _host.Cancel(_id);

    public void MarkPending()
    {
        _pending = true;
        SetFirst();
    }

    private void SetFirst()
    {
        lock (_lock)
        {
            _first = true;
            Monitor.PulseAll(_lock);
        }
    }

    public void Done(string[] result)
    {
        lock (_lock)
        {
            _finished = true;
            _registration.Unregister();
        }

        if (!_pending)
        {
            _syncResult = result;
            SetFirst();
            return;
        }

        if (result[0] == "ok")
        {
            TResult value;
            try
            {
                value = _parse(result[1..]);
            }
            catch (Exception e)
            {
                _core.SetException(e);
                return;
            }

            _core.SetResult(value);
        }
        else
        {
            _core.SetException(ChannelHost.Rebuild(result, _token));
        }
    }

    public void Fail(Exception error)
    {
        bool first;
        lock (_lock)
        {
            first = _first;
        }

        if (!first)
        {
            _failure = error;
            SetFirst();
        }
        else
        {
            _core.SetException(error);
        }
    }

    /// <summary>The result of an operation that always completes at once (TryWrite, TryRead, Count...).</summary>
    public TResult Sync()
    {
        WaitFirst();
        if (_pending)
        {
            throw new InvalidOperationException($"Request {_id} was pending in the child; it should have completed at once.");
        }

        string[] result = _syncResult!;
        return result[0] == "ok" ? _parse(result[1..]) : throw ChannelHost.Rebuild(result, _token);
    }

    /// <summary>A ValueTask completed at once if the child completed the operation at once, else pending.</summary>
    public ValueTask<TResult> AsValueTask()
    {
        WaitFirst();
        if (_pending)
        {
            return new ValueTask<TResult>(this, _core.Version);
        }

        string[] result = _syncResult!;
        return result[0] == "ok" ? new ValueTask<TResult>(_parse(result[1..])) : ValueTask.FromException<TResult>(ChannelHost.Rebuild(result, _token));
    }

    /// <summary>As <see cref="AsValueTask"/>, for operations without a result.</summary>
    public ValueTask AsVoidValueTask()
    {
        WaitFirst();
        if (_pending)
        {
            return new ValueTask(this, _core.Version);
        }

        string[] result = _syncResult!;
        return result[0] == "ok" ? default : ValueTask.FromException(ChannelHost.Rebuild(result, _token));
    }

    private void WaitFirst()
    {
        bool answered;
        lock (_lock)
        {
            long end = Environment.TickCount64 + (long)ChildProcess.DefaultWait.TotalMilliseconds;
            while (!_first && Environment.TickCount64 < end)
            {
                Monitor.Wait(_lock, TimeSpan.FromMilliseconds(Math.Max(1, end - Environment.TickCount64)));
            }

            answered = _first;
        }

        if (!answered)
        {
            throw new TimeoutException($"The channel host did not answer request {_id}. Its output:\n{_host.Transcript}");
        }

        if (_failure is not null)
        {
            throw _failure;
        }
    }

    public TResult GetResult(short token)
    {
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending)
        {
            throw new InvalidOperationException("The operation has not completed yet.");
        }

        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset(); // consumed: the ValueTask's token is stale from now on
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        // One continuation, as the channel's own operations take (ManualResetValueTaskSourceCore does not refuse a second itself).
        if (token == _core.Version && Interlocked.Exchange(ref _continuation, 1) != 0)
        {
            throw new InvalidOperationException("The operation has a continuation already: a ValueTask may be awaited once.");
        }

        _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>A writer whose every call runs in the child, on the same shared channel.</summary>
internal sealed class RemoteWriter(ChannelHost host, int cid) : ChannelWriter<int>
{
    private static bool ParseBool(string[] words) => bool.Parse(words[0]);

    public override bool TryComplete(Exception? error = null)
    {
        // The child makes an exception of the same type with the same message, so that readers see its type name.
        string args = error is null ? string.Empty : $"{ChannelHost.B64(error.GetType().AssemblyQualifiedName!)} {ChannelHost.B64(error.Message)}";
        return host.Call(cid, "complete", args, ParseBool, CancellationToken.None).Sync();
    }

    public override bool TryWrite(int item) => host.Call(cid, "trywrite", Str(item), ParseBool, CancellationToken.None).Sync();

    public override ValueTask WriteAsync(int item, CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled(cancellationToken)
            : host.Call(cid, "write", Str(item), _ => true, cancellationToken).AsVoidValueTask();

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<bool>(cancellationToken)
            : host.Call(cid, "waitwrite", string.Empty, ParseBool, cancellationToken).AsValueTask();

    private static string Str(int item) => item.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A reader whose every call runs in the child, on the same shared channel.</summary>
internal sealed class RemoteReader(ChannelHost host, int cid) : ChannelReader<int>
{
    private readonly object _lock = new();
    private Task? _completion;

    public override bool CanCount => true;

    public override bool CanPeek => true;

    public override int Count => host.Call(cid, "count", string.Empty, w => int.Parse(w[0], CultureInfo.InvariantCulture), CancellationToken.None).Sync();

    /// <summary>One task here, completed as the child's Completion completes.</summary>
    public override Task Completion
    {
        get
        {
            lock (_lock)
            {
                return _completion ??= Watch();
            }
        }
    }

    private Task Watch()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        ValueTask remote = host.Call(cid, "completion", string.Empty, _ => true, CancellationToken.None).AsVoidValueTask();
        remote.AsTask().ContinueWith(
            t =>
            {
                switch (t.Exception?.InnerException)
                {
                    case null:
                        done.TrySetResult();
                        break;
                    case OperationCanceledException oce:
                        done.TrySetCanceled(oce.CancellationToken);
                        break;
                    case Exception e:
                        done.TrySetException(e);
                        break;
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return done.Task;
    }

    public override bool TryRead(out int item)
    {
        (bool ok, int value) = host.Call(cid, "tryread", string.Empty, ParsePair, CancellationToken.None).Sync();
        item = value;
        return ok;
    }

    public override bool TryPeek(out int item)
    {
        (bool ok, int value) = host.Call(cid, "peek", string.Empty, ParsePair, CancellationToken.None).Sync();
        item = value;
        return ok;
    }

    public override ValueTask<int> ReadAsync(CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<int>(cancellationToken)
            : host.Call(cid, "read", string.Empty, w => int.Parse(w[0], CultureInfo.InvariantCulture), cancellationToken).AsValueTask();

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
        cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<bool>(cancellationToken)
            : host.Call(cid, "waitread", string.Empty, w => bool.Parse(w[0]), cancellationToken).AsValueTask();

    private static (bool, int) ParsePair(string[] w) => (bool.Parse(w[0]), int.Parse(w[1], CultureInfo.InvariantCulture));
}

/// <summary>A shared channel read here and written by a child process.</summary>
internal sealed class RemoteWriterChannel : Channel<int>
{
    public RemoteWriterChannel(SharedChannel<int> local, ChannelHost host, int cid)
    {
        Reader = local.Reader;
        Writer = new RemoteWriter(host, cid);
    }
}

/// <summary>A shared channel written here and read by a child process.</summary>
internal sealed class RemoteReaderChannel : Channel<int>
{
    public RemoteReaderChannel(SharedChannel<int> local, ChannelHost host, int cid)
    {
        Reader = new RemoteReader(host, cid);
        Writer = local.Writer;
    }
}
