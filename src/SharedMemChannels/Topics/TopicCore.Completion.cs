using System.Text;
using System.Text.Unicode;
using System.Threading.Channels;
using SharedMemChannels.Common;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;

namespace SharedMemChannels.Topics;

/// <content>
/// Completion: the publisher's <c>Complete</c> (or the topic's removal) recorded in the control block for
/// every process, as a channel's completion is in its ring: one CAS names the completer, the exception's
/// type name and message are written, then the final state is published with a release store.
/// </content>
internal sealed partial class TopicCore
{
    private Exception? _localError;

    private ref long CompletionWord => ref _segment.Memory.Int64(_control + TopicControl.CompletionStateOffset);

    /// <summary>Whether the topic was completed (by its publisher's <c>Complete</c>, or removed): no message follows what was published.</summary>
    public bool IsCompleted => (Volatile.Read(ref CompletionWord) & 0xFFFFFFFF) != (long)RingCompletionState.Open;

    /// <summary>
    /// Whether the completion is recorded for good: a final state, or a completer that died while writing
    /// the record. Subscribers end on this (a live completer is a store away from the final state).
    /// </summary>
    public bool IsCompletionFinal
    {
        get
        {
            long word = Volatile.Read(ref CompletionWord);
            return (RingCompletionState)(int)(word & 0xFFFFFFFF) switch
            {
                RingCompletionState.Open => false,
                RingCompletionState.Completing => !_segment.Processes.IsAlive(new OwnerId((uint)(word >>> 32))),
                _ => true,
            };
        }
    }

    /// <summary>Records the completion for every process (the first in any process wins) and wakes the subscribers.</summary>
    public bool TryComplete(Exception? error)
    {
        if (!TryRecordCompletion(_segment.Memory, _control, _segment.Owner, error))
        {
            return false;
        }

        _localError = error;
        MessageEvent.Signal();
        return true;
    }

    /// <summary>Writes the completion record of the control block at <paramref name="control"/>; false when it was completed already.</summary>
    internal static bool TryRecordCompletion(SegmentMemory memory, long control, OwnerId completer, Exception? error)
    {
        ref long word = ref memory.Int64(control + TopicControl.CompletionStateOffset);
        long owner = (long)completer.Value << 32;
        if (Interlocked.CompareExchange(ref word, (long)RingCompletionState.Completing | owner, (long)RingCompletionState.Open) != (long)RingCompletionState.Open)
        {
            return false;
        }

        RingCompletionState final = error switch
        {
            null => RingCompletionState.Completed,
            OperationCanceledException => RingCompletionState.Canceled,
            _ => RingCompletionState.Faulted,
        };
        int typeLength = error is null ? 0 : WriteUtf8(error.GetType().FullName ?? error.GetType().Name, memory.Span(control + TopicControl.CompletionTypeOffset, TopicControl.CompletionTypeCapacity));
        int messageLength = error is null ? 0 : WriteUtf8(error.Message, memory.Span(control + TopicControl.CompletionMessageOffset, TopicControl.CompletionMessageCapacity));
        Volatile.Write(ref memory.Int32(control + TopicControl.CompletionTypeLengthOffset), typeLength);
        Volatile.Write(ref memory.Int32(control + TopicControl.CompletionMessageLengthOffset), messageLength);
        Volatile.Write(ref word, (long)final | owner);
        return true;
    }

    /// <summary>
    /// The error the topic was completed with, as this process sees it: the very object where it was
    /// completed, a <see cref="RemoteChannelException"/> (a cancellation stays one, a removal is a
    /// <see cref="ChannelRemovedException"/>) elsewhere; null for a plain <c>Complete()</c>. A completer that
    /// died while writing the record reads as a fault saying so; while a live one writes it, null.
    /// </summary>
    public Exception? CompletionError()
    {
        if (_localError is not null)
        {
            return _localError;
        }

        RingCompletion completion = ReadCompletion(_segment.Memory, _control, _segment.Processes.IsAlive, _segment.Name, Name);
        return completion.State switch
        {
            RingCompletionState.Faulted when completion.ExceptionType == typeof(ChannelRemovedException).FullName =>
                new ChannelRemovedException(completion.Message ?? $"Topic '{Name}' was removed."),
            RingCompletionState.Faulted => new RemoteChannelException(completion.ExceptionType ?? "unknown", completion.Message ?? string.Empty),
            RingCompletionState.Canceled => new OperationCanceledException(completion.Message),
            _ => null,
        };
    }

    /// <summary>What a read of a completed and drained topic throws (a channel's rules): the removal, the cancellation, or a <see cref="ChannelClosedException"/> around the error.</summary>
    public Exception ClosedException()
    {
        Exception? error = CompletionError();
        return error switch
        {
            null => new ChannelClosedException($"Topic '{Name}' was completed by its publisher."),
            OperationCanceledException or ChannelRemovedException => error,
            _ => new ChannelClosedException($"Topic '{Name}' was completed by its publisher with an error.", error),
        };
    }

    /// <summary>Reads a completion record (untrusted: lengths and state checked).</summary>
    internal static RingCompletion ReadCompletion(SegmentMemory memory, long control, Func<OwnerId, bool> isAlive, string segmentName, string topicName)
    {
        long word = Volatile.Read(ref memory.Int64(control + TopicControl.CompletionStateOffset));
        var state = (RingCompletionState)(int)(word & 0xFFFFFFFF);
        switch (state)
        {
            case RingCompletionState.Open or RingCompletionState.Completed:
                return new RingCompletion(state, null, null);
            case RingCompletionState.Completing:
                return isAlive(new OwnerId((uint)(word >>> 32)))
                    ? new RingCompletion(state, null, null)
                    : new RingCompletion(RingCompletionState.Faulted, typeof(InvalidOperationException).FullName, "The process completing the topic died before it recorded the completion.");
            case RingCompletionState.Faulted or RingCompletionState.Canceled:
                int typeLength = Volatile.Read(ref memory.Int32(control + TopicControl.CompletionTypeLengthOffset));
                int messageLength = Volatile.Read(ref memory.Int32(control + TopicControl.CompletionMessageLengthOffset));
                if ((uint)typeLength > TopicControl.CompletionTypeCapacity || (uint)messageLength > TopicControl.CompletionMessageCapacity)
                {
                    ThrowHelper.ThrowDamaged(segmentName, $"topic '{topicName}' has completion record lengths {typeLength}/{messageLength} beyond the record.");
                }

                return new RingCompletion(
                    state,
                    Encoding.UTF8.GetString(memory.Span(control + TopicControl.CompletionTypeOffset, typeLength)),
                    Encoding.UTF8.GetString(memory.Span(control + TopicControl.CompletionMessageOffset, messageLength)));
            default:
                ThrowHelper.ThrowDamaged(segmentName, $"topic '{topicName}' has completion state {(int)state}, not a state.");
                return default;
        }
    }

    /// <summary>Encodes as much of <paramref name="text"/> as fits, cut on a character boundary.</summary>
    private static int WriteUtf8(string text, Span<byte> destination)
    {
        Utf8.FromUtf16(text, destination, out _, out int written, replaceInvalidSequences: true, isFinalBlock: true);
        return written;
    }
}
