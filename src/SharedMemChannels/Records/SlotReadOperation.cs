using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace SharedMemChannels.Records;

/// <summary>What a pending read of a record-carrying channel turns its slot into, and where its operation goes back.</summary>
/// <typeparam name="T">What the reader hands out: the record itself, or the value deserialized from it.</typeparam>
internal interface ISlotTaker<T>
{
    /// <summary>Turns a slot just read into the reader's item (taking ownership of the record).</summary>
    T Take(in RecordSlot slot);

    /// <summary>A pending read is done: its operation serves the next one.</summary>
    void Return(SlotReadOperation<T> operation);
}

/// <summary>
/// A pending <c>ReadAsync</c> of a channel that carries records (a record channel, a serialized channel):
/// follows the core's pending read (a pooled operation of the core), then turns the slot it gets into the
/// reader's item. Pooled by its reader.
/// </summary>
/// <remarks>
/// Not an <c>async</c> method on a pooling builder: that returns its state machine to the pool from a
/// <c>GetResult</c> that fails because the read is still pending, and the channel contract (a ValueTask is
/// consumed once; <c>GetResult</c> before completion throws) must hold without corrupting a pool. This
/// source checks its state first, and a stale token is refused before anything is reset.
/// </remarks>
internal sealed class SlotReadOperation<T> : IValueTaskSource<T>
{
    private readonly ISlotTaker<T> _reader;
    private readonly Action _onInnerCompleted;
    private ManualResetValueTaskSourceCore<T> _source; // a mutable struct: never copied
    private int _continuation; // SingleContinuation's flag
    private ConfiguredValueTaskAwaitable<RecordSlot>.ConfiguredValueTaskAwaiter _inner;

    public SlotReadOperation(ISlotTaker<T> reader)
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
            _continuation = 0;
            _reader.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        Common.SingleContinuation.Claim(ref _continuation, token, _source.Version);
        _source.OnCompleted(continuation, state, token, flags);
    }
}
