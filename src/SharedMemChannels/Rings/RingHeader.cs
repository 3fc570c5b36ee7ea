using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;
using SharedMemChannels.Common;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Rings;

/// <summary>How far a ring's completion has gone.</summary>
internal enum RingCompletionState
{
    /// <summary>Not completed: writers may write.</summary>
    Open = 0,

    /// <summary>A completer won the race and is writing the error record; final state follows.</summary>
    Completing = 1,

    /// <summary>Completed without error.</summary>
    Completed = 2,

    /// <summary>Completed with an error (type name and message recorded).</summary>
    Faulted = 3,

    /// <summary>Completed with an <see cref="OperationCanceledException"/>.</summary>
    Canceled = 4,
}

/// <summary>A copy of a ring's completion record.</summary>
/// <param name="State">The state; <see cref="RingCompletionState.Completing"/> only while a live completer writes the record.</param>
/// <param name="ExceptionType">The full type name of the completing exception, or null.</param>
/// <param name="Message">Its message (possibly truncated to the record's bound), or null.</param>
internal readonly record struct RingCompletion(RingCompletionState State, string? ExceptionType, string? Message);

/// <summary>
/// The part every ring shares: creating and checking the header, the counters, the completion record
/// and the two event counts. All offsets come from <see cref="RingLayout"/>.
/// </summary>
internal sealed class RingHeader
{
    private readonly SegmentMemory _memory;
    private readonly long _base;

    private RingHeader(SegmentMemory memory, long offset, RingKind kind, int elementSize, int capacity, int slotCount, int cellSize, ProcessTable processes)
    {
        _memory = memory;
        _base = offset;
        Kind = kind;
        ElementSize = elementSize;
        Capacity = capacity;
        SlotCount = slotCount;
        CellSize = cellSize;
        Processes = processes;
        ReadersEvent = new EventCount(memory, offset + RingLayout.ReadersEventSequenceOffset, offset + RingLayout.ReadersEventWaitersOffset);
        WritersEvent = new EventCount(memory, offset + RingLayout.WritersEventSequenceOffset, offset + RingLayout.WritersEventWaitersOffset);
        CompletionEvent = new EventCount(memory, offset + RingLayout.CompletionStateOffset, offset + RingLayout.CompletionWaitersOffset);
    }

    public SegmentMemory Memory => _memory;

    /// <summary>The ring's start in the segment.</summary>
    public long Offset => _base;

    public RingKind Kind { get; }

    public int ElementSize { get; }

    /// <summary>The bound users observe.</summary>
    public int Capacity { get; }

    /// <summary>Slots in memory: a power of two, at least <see cref="Capacity"/>.</summary>
    public int SlotCount { get; }

    public int CellSize { get; }

    public ProcessTable Processes { get; }

    /// <summary>Readers sleep here; writers signal it after publishing.</summary>
    public EventCount ReadersEvent { get; }

    /// <summary>Writers sleep here; readers signal it after freeing a slot.</summary>
    public EventCount WritersEvent { get; }

    /// <summary>
    /// Sleep here until the completion state changes: its futex word is the state itself (the low half of
    /// the state word), so it is never bumped, only woken (<see cref="EventCount.WakeAll"/>).
    /// </summary>
    public EventCount CompletionEvent { get; }

    /// <summary>
    /// Lays out an empty ring in [offset, offset + length) and publishes it (Magic last). The caller owns
    /// the block and makes sure nobody attaches before this returns.
    /// </summary>
    public static RingHeader Initialize(SegmentMemory memory, long offset, long length, RingKind kind, int elementSize, int capacity, ProcessTable processes)
    {
        if (kind is not (RingKind.Spsc or RingKind.Mpmc or RingKind.Unbounded or RingKind.Prioritized))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(kind), kind, "Unknown ring kind.");
        }

        if (capacity is <= 0 or > RingLayout.MaxCapacity)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), capacity, $"A ring holds 1 to {RingLayout.MaxCapacity} items.");
        }

        if (elementSize is <= 0 or > RingLayout.MaxElementSize)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(elementSize), elementSize, "An element is 1 byte to 1 MiB.");
        }

        if (offset % RingLayout.LineSize != 0)
        {
            ThrowHelper.ThrowArgument($"A ring starts on a {RingLayout.LineSize}-byte boundary; {offset} is not.", nameof(offset));
        }

        long required = RingLayout.RequiredBytes(kind, elementSize, capacity);
        if (length < required)
        {
            ThrowHelper.ThrowArgument($"A ring of {capacity} x {elementSize} bytes needs {required} bytes; the block has {length}.", nameof(length));
        }

        int slots = RingLayout.SlotCountIn(kind, capacity);
        int cellSize = RingLayout.CellSizeFor(kind, elementSize);
        Clear(memory, offset, required);
        Volatile.Write(ref memory.Int32(offset + RingLayout.VersionOffset), RingLayout.CurrentVersion);
        Volatile.Write(ref memory.Int32(offset + RingLayout.KindOffset), (int)kind);
        Volatile.Write(ref memory.Int32(offset + RingLayout.ElementSizeOffset), elementSize);
        Volatile.Write(ref memory.Int32(offset + RingLayout.CapacityOffset), capacity);
        Volatile.Write(ref memory.Int32(offset + RingLayout.SlotCountOffset), slots);
        Volatile.Write(ref memory.Int32(offset + RingLayout.CellSizeOffset), cellSize);
        Volatile.Write(ref memory.Int64(offset + RingLayout.BlockLengthOffset), length);
        if (kind == RingKind.Mpmc)
        {
            // Cell i starts free for position i (Vyukov's initial state), unclaimed.
            for (long i = 0; i < slots; i++)
            {
                Volatile.Write(ref memory.Int64(offset + RingLayout.SlotOffset(i, cellSize) + RingLayout.CellWordOffset), RingLayout.CellWord(i, 0));
            }
        }

        // Published last: a peer that sees the magic sees every field above (release store).
        Volatile.Write(ref memory.Int64(offset + RingLayout.MagicOffset), RingLayout.MagicValue);
        return new RingHeader(memory, offset, kind, elementSize, capacity, slots, cellSize, processes);
    }

    /// <summary>
    /// Checks the header of an existing ring against what the caller expects and against itself. Every
    /// field is untrusted: a mismatch or an impossible value is an <see cref="InvalidSegmentException"/>.
    /// </summary>
    public static RingHeader Attach(SegmentMemory memory, long offset, long length, RingKind kind, int elementSize, ProcessTable processes)
    {
        // The offset and length come from a control block in shared memory: garbage there is damage, never
        // an ArgumentException of the caller's.
        if (offset <= 0 || offset % RingLayout.LineSize != 0 || length < RingLayout.SlotsOffset || length > memory.MaxCapacity - offset)
        {
            Damaged(memory, offset, $"a ring block at offset {offset} of {length} bytes is not on a {RingLayout.LineSize}-byte boundary inside the segment, or cannot hold its header");
        }

        if (Volatile.Read(ref memory.Int64(offset + RingLayout.MagicOffset)) != RingLayout.MagicValue)
        {
            Damaged(memory, offset, "the ring's magic number is wrong");
        }

        int version = Volatile.Read(ref memory.Int32(offset + RingLayout.VersionOffset));
        int storedKind = Volatile.Read(ref memory.Int32(offset + RingLayout.KindOffset));
        int storedElementSize = Volatile.Read(ref memory.Int32(offset + RingLayout.ElementSizeOffset));
        int capacity = Volatile.Read(ref memory.Int32(offset + RingLayout.CapacityOffset));
        int slots = Volatile.Read(ref memory.Int32(offset + RingLayout.SlotCountOffset));
        int cellSize = Volatile.Read(ref memory.Int32(offset + RingLayout.CellSizeOffset));
        long storedLength = Volatile.Read(ref memory.Int64(offset + RingLayout.BlockLengthOffset));
        if (version != RingLayout.CurrentVersion)
        {
            Damaged(memory, offset, $"ring layout version {version}, expected {RingLayout.CurrentVersion}");
        }

        if (storedKind != (int)kind || storedElementSize != elementSize)
        {
            Damaged(memory, offset, $"the ring is kind {storedKind} of {storedElementSize}-byte elements, not {kind} of {elementSize}-byte elements");
        }

        if (capacity is <= 0 or > RingLayout.MaxCapacity || slots != RingLayout.SlotCountIn(kind, capacity) ||
            cellSize != RingLayout.CellSizeFor(kind, elementSize) || storedLength > length ||
            storedLength < RingLayout.RequiredBytes(kind, elementSize, capacity))
        {
            Damaged(memory, offset, $"impossible ring shape (capacity {capacity}, slots {slots}, cell {cellSize}, length {storedLength} of {length})");
        }

        return new RingHeader(memory, offset, kind, elementSize, capacity, slots, cellSize, processes);
    }

    public ref long Tail => ref _memory.Int64(_base + RingLayout.TailOffset);

    public ref long Head => ref _memory.Int64(_base + RingLayout.HeadOffset);

    public ref long WrittenWord => ref _memory.Int64(_base + RingLayout.WrittenOffset);

    public ref long ReadWord => ref _memory.Int64(_base + RingLayout.ReadOffset);

    public ref long DroppedWord => ref _memory.Int64(_base + RingLayout.DroppedOffset);

    public ref long LostWord => ref _memory.Int64(_base + RingLayout.LostOffset);

    public ref long SkippedWord => ref _memory.Int64(_base + RingLayout.SkippedOffset);

    /// <summary>Items written (including those that later were dropped).</summary>
    public long Written => Volatile.Read(ref WrittenWord);

    /// <summary>Items read.</summary>
    public long Read => Volatile.Read(ref ReadWord);

    /// <summary>Items dropped by the full mode (DropOldest, DropNewest, DropWrite).</summary>
    public long Dropped => Volatile.Read(ref DroppedWord);

    /// <summary>Items a reader claimed and died holding (MPMC).</summary>
    public long Lost => Volatile.Read(ref LostWord);

    /// <summary>Cells a writer claimed and died before publishing (MPMC); nothing written, nothing lost.</summary>
    public long Skipped => Volatile.Read(ref SkippedWord);

    /// <summary>Where slot <paramref name="index"/> (masked) starts in the segment.</summary>
    public long SlotAt(long index) => _base + RingLayout.SlotOffset(index, CellSize);

    /// <summary>Throws the exception for damage found in this ring.</summary>
    [DoesNotReturn]
    public void ThrowDamaged(string reason) => Damaged(_memory, _base, reason);

    /// <summary>
    /// Records the completion (first caller wins, in any process). The state word goes from Open to
    /// Completing with the completer named in one CAS, then the record is written, then the final state
    /// is published with a release store, so a reader that sees a final state sees the whole record.
    /// </summary>
    public bool TryComplete(OwnerId completer, Exception? error)
    {
        ref long state = ref _memory.Int64(_base + RingLayout.CompletionStateOffset);
        long owner = (long)completer.Value << 32;
        if (Interlocked.CompareExchange(ref state, (long)RingCompletionState.Completing | owner, (long)RingCompletionState.Open) != (long)RingCompletionState.Open)
        {
            return false;
        }

        RingCompletionState final = error switch
        {
            null => RingCompletionState.Completed,
            OperationCanceledException => RingCompletionState.Canceled,
            _ => RingCompletionState.Faulted,
        };
        int typeLength = error is null ? 0 : WriteUtf8(error.GetType().FullName ?? error.GetType().Name, _memory.Span(_base + RingLayout.CompletionTypeOffset, RingLayout.MaxTypeNameBytes));
        int messageLength = error is null ? 0 : WriteUtf8(error.Message, _memory.Span(_base + RingLayout.CompletionMessageOffset, RingLayout.MaxMessageBytes));
        Volatile.Write(ref _memory.Int32(_base + RingLayout.CompletionTypeLengthOffset), typeLength);
        Volatile.Write(ref _memory.Int32(_base + RingLayout.CompletionMessageLengthOffset), messageLength);
        Volatile.Write(ref state, (long)final | owner);
        CompletionEvent.WakeAll();
        return true;
    }

    /// <summary>Whether the ring was completed (or a completion is being recorded).</summary>
    public bool IsCompleted => (Volatile.Read(ref _memory.Int64(_base + RingLayout.CompletionStateOffset)) & 0xFFFFFFFF) != 0;

    /// <summary>
    /// Whether the completion is recorded for good: a final state, or a completer that died while
    /// writing the record (read as Faulted). Reads no strings.
    /// </summary>
    public bool IsCompletionFinal
    {
        get
        {
            long word = Volatile.Read(ref _memory.Int64(_base + RingLayout.CompletionStateOffset));
            var state = (RingCompletionState)(int)(word & 0xFFFFFFFF);
            return state switch
            {
                RingCompletionState.Open => false,
                RingCompletionState.Completing => !Processes.IsAlive(new OwnerId((uint)(word >>> 32))),
                _ => true,
            };
        }
    }

    /// <summary>
    /// Reads the completion record. A completer that died while writing it leaves "Completing" forever:
    /// that reads as Faulted with a message saying so, never as a wait.
    /// </summary>
    public RingCompletion ReadCompletion()
    {
        long word = Volatile.Read(ref _memory.Int64(_base + RingLayout.CompletionStateOffset));
        var state = (RingCompletionState)(int)(word & 0xFFFFFFFF);
        var completer = new OwnerId((uint)(word >>> 32));
        switch (state)
        {
            case RingCompletionState.Open or RingCompletionState.Completed:
                return new RingCompletion(state, null, null);
            case RingCompletionState.Completing:
                return Processes.IsAlive(completer)
                    ? new RingCompletion(state, null, null)
                    : new RingCompletion(RingCompletionState.Faulted, typeof(InvalidOperationException).FullName, "The process completing the channel died before it recorded the completion.");
            case RingCompletionState.Faulted or RingCompletionState.Canceled:
                int typeLength = Volatile.Read(ref _memory.Int32(_base + RingLayout.CompletionTypeLengthOffset));
                int messageLength = Volatile.Read(ref _memory.Int32(_base + RingLayout.CompletionMessageLengthOffset));
                if ((uint)typeLength > RingLayout.MaxTypeNameBytes || (uint)messageLength > RingLayout.MaxMessageBytes)
                {
                    ThrowDamaged($"completion record lengths {typeLength}/{messageLength} exceed the record");
                }

                return new RingCompletion(
                    state,
                    Encoding.UTF8.GetString(_memory.Span(_base + RingLayout.CompletionTypeOffset, typeLength)),
                    Encoding.UTF8.GetString(_memory.Span(_base + RingLayout.CompletionMessageOffset, messageLength)));
            default:
                ThrowDamaged($"completion state {(int)state} is not a state");
                return default;
        }
    }

    /// <summary>Encodes as much of <paramref name="text"/> as fits, cut on a character boundary.</summary>
    private static int WriteUtf8(string text, Span<byte> destination)
    {
        Utf8.FromUtf16(text, destination, out _, out int written, replaceInvalidSequences: true, isFinalBlock: true);
        return written;
    }

    private static void Clear(SegmentMemory memory, long offset, long length)
    {
        for (long done = 0; done < length;)
        {
            int chunk = (int)Math.Min(length - done, 1 << 20);
            memory.Span(offset + done, chunk).Clear();
            done += chunk;
        }
    }

    [DoesNotReturn]
    private static void Damaged(SegmentMemory memory, long offset, string reason) =>
        ThrowHelper.ThrowDamaged(memory.Name, $"the ring at offset {offset} is damaged: {reason}.");
}
