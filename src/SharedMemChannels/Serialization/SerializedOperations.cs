using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using SharedMemChannels.Records;

namespace SharedMemChannels.Serialization;

/// <summary>
/// A pending <c>ReadAsync</c> of a serialized channel: waits on the record channel's own pending read
/// (a pooled operation of the core), then deserializes the record it gets. Pooled by its reader.
/// </summary>
/// <remarks>
/// Not an <c>async</c> method on a pooling builder: that returns its state machine to the pool from a
/// <c>GetResult</c> that fails because the read is still pending, and the channel contract (a ValueTask is
/// consumed once; <c>GetResult</c> before completion throws) must hold without corrupting a pool. This
/// source checks its state first, and a stale token is refused by <see cref="ManualResetValueTaskSourceCore{TResult}"/>.
/// </remarks>
internal sealed class SerializedReadOperation<T> : IValueTaskSource<T>
{
    private readonly SerializedChannelReader<T> _reader;
    private readonly Action _onInnerCompleted;
    private ManualResetValueTaskSourceCore<T> _source; // a mutable struct: never copied
    private ConfiguredValueTaskAwaitable<RecordSlot>.ConfiguredValueTaskAwaiter _inner;

    public SerializedReadOperation(SerializedChannelReader<T> reader)
    {
        _reader = reader;
        _onInnerCompleted = OnInnerCompleted;
    }

    /// <summary>Follows the core's pending read; the continuation runs where that read completes (the channel's continuation policy).</summary>
    public ValueTask<T> Start(ValueTask<RecordSlot> inner)
    {
        short token = _source.Version;
        _inner = inner.ConfigureAwait(false).GetAwaiter();
        if (_inner.IsCompleted)
        {
            OnInnerCompleted();
        }
        else
        {
            _inner.UnsafeOnCompleted(_onInnerCompleted);
        }

        return new ValueTask<T>(this, token);
    }

    private void OnInnerCompleted()
    {
        ConfiguredValueTaskAwaitable<RecordSlot>.ConfiguredValueTaskAwaiter inner = _inner;
        _inner = default;
        T value;
        try
        {
            RecordSlot slot = inner.GetResult();
            value = _reader.Take(in slot);
        }
        catch (Exception e)
        {
            _source.SetException(e);
            return;
        }

        _source.SetResult(value);
    }

    public T GetResult(short token)
    {
        if (token != _source.Version)
        {
            throw new InvalidOperationException("This operation's result was taken already: a ValueTask may be awaited once.");
        }

        if (_source.GetStatus(token) == ValueTaskSourceStatus.Pending)
        {
            throw new InvalidOperationException("The read is still pending: await it instead of asking for its result.");
        }

        try
        {
            return _source.GetResult(token);
        }
        finally
        {
            _source.Reset();
            _reader.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}

/// <summary>
/// A pending <c>WriteAsync</c> of a serialized channel: the item is serialized into a record already; this
/// waits on the record channel's own pending write and frees the record if that write fails or is
/// canceled (it is still the writer's then). Pooled by its writer; see <see cref="SerializedReadOperation{T}"/>
/// for why not an <c>async</c> method.
/// </summary>
internal sealed class SerializedWriteOperation<T> : IValueTaskSource
{
    private readonly SerializedChannelWriter<T> _writer;
    private readonly Action _onInnerCompleted;
    private ManualResetValueTaskSourceCore<bool> _source;
    private ConfiguredValueTaskAwaitable.ConfiguredValueTaskAwaiter _inner;
    private ShmRecord _record;

    public SerializedWriteOperation(SerializedChannelWriter<T> writer)
    {
        _writer = writer;
        _onInnerCompleted = OnInnerCompleted;
    }

    public ValueTask Start(ValueTask inner, ShmRecord record)
    {
        short token = _source.Version;
        _record = record;
        _inner = inner.ConfigureAwait(false).GetAwaiter();
        if (_inner.IsCompleted)
        {
            OnInnerCompleted();
        }
        else
        {
            _inner.UnsafeOnCompleted(_onInnerCompleted);
        }

        return new ValueTask(this, token);
    }

    private void OnInnerCompleted()
    {
        ConfiguredValueTaskAwaitable.ConfiguredValueTaskAwaiter inner = _inner;
        ShmRecord record = _record;
        _inner = default;
        _record = default;
        try
        {
            inner.GetResult();
        }
        catch (Exception e)
        {
            SerializedChannelWriter<T>.Abandon(record);
            _source.SetException(e);
            return;
        }

        _source.SetResult(true);
    }

    public void GetResult(short token)
    {
        if (token != _source.Version)
        {
            throw new InvalidOperationException("This operation's result was taken already: a ValueTask may be awaited once.");
        }

        if (_source.GetStatus(token) == ValueTaskSourceStatus.Pending)
        {
            throw new InvalidOperationException("The write is still pending: await it instead of asking for its result.");
        }

        try
        {
            _source.GetResult(token);
        }
        finally
        {
            _source.Reset();
            _writer.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
