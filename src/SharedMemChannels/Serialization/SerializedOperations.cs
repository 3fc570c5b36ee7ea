using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using SharedMemChannels.Records;

namespace SharedMemChannels.Serialization;

/// <summary>
/// A pending <c>WriteAsync</c> of a serialized channel: the item is serialized into a record already; this
/// waits on the record channel's own pending write and frees the record if that write fails or is
/// canceled (it is still the writer's then). Pooled by its writer; see <see cref="Records.SlotReadOperation{T}"/>
/// for why not an <c>async</c> method.
/// </summary>
internal sealed class SerializedWriteOperation<T> : IValueTaskSource
{
    private readonly SerializedChannelWriter<T> _writer;
    private readonly Action _onInnerCompleted;
    private ManualResetValueTaskSourceCore<bool> _source;
    private int _continuation; // SingleContinuation's flag
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
            _continuation = 0;
            _writer.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        Common.SingleContinuation.Claim(ref _continuation, token, _source.Version);
        _source.OnCompleted(continuation, state, token, flags);
    }
}
