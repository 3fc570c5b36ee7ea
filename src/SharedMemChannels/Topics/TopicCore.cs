using System.IO.Hashing;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Topics;

/// <summary>
/// One process's hold on a topic: its control block and buffer area in the segment, read with every
/// value checked. <see cref="SharedTopic"/>, <see cref="TopicPublisher"/> and <see cref="TopicSubscriber"/>
/// are its views.
/// </summary>
internal sealed partial class TopicCore
{
    /// <summary>The heap tag of a topic's buffer area ("TOP1").</summary>
    public const uint BufferAreaTag = 0x544F_5031;

    private readonly SegmentAttachment _segment;
    private readonly ShmHandle _controlBlock;
    private readonly long _control;
    private Area _area;
    private int _reference = -1;   // this instance's row of the reference table
    private int _holders = 1;      // the topic view, its publisher and subscribers: the reference goes with the last
    private object? _notifierHold;

    /// <summary>A buffer area as this process located and checked it: its heap block, where its buffers start, their size.</summary>
    private sealed record Area(ulong Block, long Start, int BufferSize);

    private TopicCore(SegmentAttachment segment, string name, ShmHandle controlBlock, long control, Area area, int bufferCount)
    {
        _segment = segment;
        Name = name;
        _controlBlock = controlBlock;
        _control = control;
        _area = area;
        BufferCount = bufferCount;
        TopicControl c = segment.Memory.Ref<TopicControl>(control);
        HistoryDepth = Math.Clamp(c.HistoryDepth, 0, bufferCount);
        AckTimeout = TimeSpan.FromMilliseconds(Math.Clamp(c.AckTimeoutMs, 0, 60_000));
        HashPayloads = (c.Flags & TopicControl.FlagHashPayloads) != 0;
        AckPolicy = (c.Flags & TopicControl.FlagAckFreeBuffer) != 0 ? TopicAckPolicy.FreeBuffer : TopicAckPolicy.PreviousMessage;
        MessageEvent = new EventCount(segment.Memory, control + TopicControl.MessageSequenceOffset, control + TopicControl.MessageWaitersOffset);
        AckEvent = new EventCount(segment.Memory, control + TopicControl.AckSequenceOffset, control + TopicControl.AckWaitersOffset);
    }

    public string Name { get; }

    public SegmentAttachment Segment => _segment;

    /// <summary>Where the control block is in the segment.</summary>
    public long ControlOffset => _control;

    /// <summary>Where the current buffers start and how many bytes they span (header line excluded).</summary>
    public (long Start, long Length) Buffers
    {
        get
        {
            Area area = CurrentArea();
            return (area.Start + TopicLayout.LineSize, BufferCount * TopicLayout.BufferStride(area.BufferSize));
        }
    }

    public int BufferCount { get; }

    /// <summary>The payload bytes of a buffer now (the buffers grow for a larger message).</summary>
    public int BufferSize => CurrentArea().BufferSize;

    /// <summary>The area the control block names now: the cached one while it is the same block, else located and checked again.</summary>
    private Area CurrentArea()
    {
        Area cached = Volatile.Read(ref _area);
        ulong block = Volatile.Read(ref Control.BuffersBlock);
        if (block == cached.Block)
        {
            return cached;
        }

        Area found = LocateArea(_segment, Name, block, BufferCount);
        Volatile.Write(ref _area, found);
        return found;
    }

    /// <summary>Checks an area block (tag, shape, bounds) and returns where its buffers are.</summary>
    private static Area LocateArea(SegmentAttachment segment, string name, ulong block, int bufferCount)
    {
        long payload;
        int length;
        uint tag;
        try
        {
            payload = segment.Heap.GetPayloadOffset(ShmHandle.FromValue(block), out length, out tag);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // The control block names no live block of this segment: damage, not a caller's bad handle.
            throw new InvalidSegmentException(segment.Name, $"topic '{name}' names a buffer area that is not a block ({e.Message})");
        }

        long start = (payload + TopicLayout.LineSize - 1) & ~(long)(TopicLayout.LineSize - 1);
        TopicAreaHeader header = tag == BufferAreaTag && start + TopicLayout.LineSize <= payload + length ? segment.Memory.Ref<TopicAreaHeader>(start) : default;
        if (header.Magic != TopicAreaHeader.MagicValue || header.BufferCount != bufferCount || header.BufferSize is < 1 or > MaxBufferSize ||
            start + TopicLayout.LineSize + (bufferCount * TopicLayout.BufferStride(header.BufferSize)) > payload + length)
        {
            ThrowHelper.ThrowDamaged(segment.Name, $"topic '{name}' has a damaged buffer area.");
        }

        return new Area(block, start, header.BufferSize);
    }

    /// <summary>SpinWait rounds of a topic wait before it sleeps: the busy ones only (SpinWait yields from its eleventh).</summary>
    public const int SpinRounds = 10;

    /// <summary>The largest buffer (a message larger than this is refused): 128 MiB.</summary>
    public const int MaxBufferSize = 128 << 20;

    public EventCount MessageEvent { get; }

    public EventCount AckEvent { get; }

    public ref TopicControl Control => ref _segment.Memory.Ref<TopicControl>(_control);

    // The shape is read once, when the topic is attached, and checked: words changed later (by a damaged or
    // hostile peer) cannot change how long this process waits or what it checks.
    public int HistoryDepth { get; }

    public TimeSpan AckTimeout { get; }

    public bool HashPayloads { get; }

    public TopicAckPolicy AckPolicy { get; }

    internal enum OpenMode
    {
        Create,
        Open,
        OpenOrCreate,
    }

    /// <summary>
    /// Creates or opens the topic. A creator allocates the buffer area first (its own until the topic is
    /// published whole by the directory's atomic find-or-construct), so no half-made topic is ever seen.
    /// </summary>
    public static TopicCore Open(SharedSegment segment, string name, SharedTopicOptions? options, OpenMode mode)
    {
        ArgumentNullException.ThrowIfNull(segment);
        SharedName.Validate(name, nameof(name));
        if (name.Length > TopicLayout.MaxNameLength)
        {
            throw new ArgumentException($"A topic name has at most {TopicLayout.MaxNameLength} characters.", nameof(name));
        }

        if (mode != OpenMode.Open)
        {
            ArgumentNullException.ThrowIfNull(options);
            if (options.HistoryDepth > options.BufferCount)
            {
                throw new ArgumentOutOfRangeException(nameof(options), options.HistoryDepth, $"The history depth ({options.HistoryDepth}) cannot exceed the buffer count ({options.BufferCount}).");
            }
        }

        segment.ThrowIfDisposed();
        SegmentAttachment attachment = segment.Attachment;
        SharedHeap heap = attachment.Heap;
        ShmHandle area = default;
        TopicControl initial = default;
        if (options is not null && mode != OpenMode.Open)
        {
            long bytes = TopicLayout.AreaBytes(options.BufferCount, options.BufferSize);
            if (bytes > SharedSegment.MaxAllocationSize)
            {
                throw new ArgumentOutOfRangeException(nameof(options), bytes, "The topic's buffers exceed the largest allocation.");
            }

            if (!heap.TryAllocate((int)bytes, ShmOwnership.Process, BufferAreaTag, out area))
            {
                throw new OutOfSharedMemoryException($"Out of shared memory: {bytes} bytes for the buffers of topic '{name}' in segment '{attachment.Name}'.{attachment.DescribeMemoryLimit()}");
            }

            long areaPayload = heap.GetPayloadOffset(area, out _, out _);
            attachment.Memory.Span(areaPayload, (int)bytes).Clear();
            WriteAreaHeader(attachment, areaPayload, options.BufferCount, options.BufferSize);
            initial = new TopicControl
            {
                Magic = TopicControl.MagicValue,
                Version = TopicControl.CurrentVersion,
                BufferCount = options.BufferCount,
                BufferSize = options.BufferSize,
                HistoryDepth = options.HistoryDepth,
                AckTimeoutMs = (int)options.AckTimeout.TotalMilliseconds,
                Flags = (options.HashPayloads ? TopicControl.FlagHashPayloads : 0) | (options.Persistent ? TopicControl.FlagPersistent : 0) |
                        (options.AckPolicy == TopicAckPolicy.FreeBuffer ? TopicControl.FlagAckFreeBuffer : 0),
                BuffersBlock = area.Value,
                CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                CreatedBufferSize = options.BufferSize,
                State = TopicControl.StateReady,
            };
        }

        // The lookup (or creation) and this instance's reference are one step under the directory's lock,
        // as the last reference going and the destruction are: a topic is never freed between being found
        // and being referenced. A creator makes its semaphores under the same lock, so nobody finds the
        // topic before they exist.
        ObjectDirectory directory = attachment.Directory;
        ObjectRef found;
        bool created = false;
        int reference = -1;
        try
        {
            using (directory.Lock())
            {
                found = directory.FindOrConstructLocked(TopicLayout.ObjectName(name), initial, mayFind: mode != OpenMode.Create, mayCreate: mode != OpenMode.Open, out created);
                if (!found.IsNull)
                {
                    ref TopicControl c = ref attachment.Memory.Ref<TopicControl>(found.ValueOffset);
                    if (created)
                    {
                        try
                        {
                            NotifierSemaphores.Create(attachment.Name, ref c.Notifier, options!.Notifier);
                        }
                        catch
                        {
                            // No semaphores (refused, or out of them): no topic either, rather than one that
                            // names semaphores that are not there.
                            NotifierSemaphores.Destroy(attachment.Name, ref c.Notifier);
                            directory.DestroyLocked(TopicLayout.ObjectName(name), found.Block);
                            throw;
                        }

                        heap.SetOwnership(area, ShmOwnership.Segment);
                        area = default;
                    }
                    else if (Volatile.Read(ref c.State) == TopicControl.StateRemoved)
                    {
                        throw new InvalidOperationException($"Topic '{name}' was removed from segment '{attachment.Name}'; it goes when the last process holding it lets go.");
                    }

                    reference = ClaimReference(attachment, name, found.ValueOffset);
                }
            }
        }
        catch (InvalidOperationException) when (mode == OpenMode.Create && !created)
        {
            FreeQuietly(heap, area);
            throw new InvalidOperationException($"Segment '{attachment.Name}' already has a topic '{name}'.");
        }
        catch (InvalidCastException e)
        {
            FreeQuietly(heap, area);
            throw new InvalidSegmentException(attachment.Name, $"the object for topic '{name}' is not a topic control block ({e.Message})");
        }
        catch
        {
            FreeQuietly(heap, area);
            throw;
        }

        FreeQuietly(heap, area);
        if (found.IsNull)
        {
            throw new KeyNotFoundException($"Segment '{attachment.Name}' has no topic '{name}'.");
        }

        TopicCore? core = null;
        try
        {
            core = Attach(attachment, name, found.Block, found.ValueOffset, reference);
            if (!created && options is not null)
            {
                ref TopicControl c = ref core.Control;
                if (c.BufferCount != options.BufferCount || c.CreatedBufferSize != options.BufferSize || c.HistoryDepth != options.HistoryDepth ||
                    c.AckTimeoutMs != (int)options.AckTimeout.TotalMilliseconds || ((c.Flags & TopicControl.FlagHashPayloads) != 0) != options.HashPayloads ||
                    ((c.Flags & TopicControl.FlagPersistent) != 0) != options.Persistent || c.Notifier.Kind != (int)options.Notifier ||
                    ((c.Flags & TopicControl.FlagAckFreeBuffer) != 0) != (options.AckPolicy == TopicAckPolicy.FreeBuffer))
                {
                    throw new ArgumentException(
                        $"Topic '{name}' exists with {c.BufferCount} buffers of {c.CreatedBufferSize} bytes, history {c.HistoryDepth}, ack timeout {c.AckTimeoutMs} ms, " +
                        $"hashing {((c.Flags & TopicControl.FlagHashPayloads) != 0 ? "on" : "off")}, persistent {((c.Flags & TopicControl.FlagPersistent) != 0 ? "yes" : "no")}, " +
                        $"notifier {(ChannelNotifier)c.Notifier.Kind}, ack policy {((c.Flags & TopicControl.FlagAckFreeBuffer) != 0 ? TopicAckPolicy.FreeBuffer : TopicAckPolicy.PreviousMessage)}; the options ask otherwise.",
                        nameof(options));
                }
            }
        }
        catch
        {
            if (core is not null)
            {
                core.ReleaseReference();
            }
            else
            {
                ReleaseReferenceRow(attachment, name, found.Block, found.ValueOffset, reference);
            }

            throw;
        }

        return core;
    }

    /// <summary>Checks a control block found in the directory and locates its buffer area.</summary>
    private static TopicCore Attach(SegmentAttachment segment, string name, ShmHandle block, long control, int reference)
    {
        TopicControl c = segment.Memory.Ref<TopicControl>(control);
        if (c.Magic != TopicControl.MagicValue || c.Version != TopicControl.CurrentVersion || c.State is not (TopicControl.StateReady or TopicControl.StateRemoved) ||
            c.BufferCount is < 1 or > SharedTopicOptions.MaxBufferCount || !Enum.IsDefined((ChannelNotifier)c.Notifier.Kind))
        {
            ThrowHelper.ThrowDamaged(segment.Name, $"topic '{name}' has a damaged control block.");
        }

        var core = new TopicCore(segment, name, block, control, LocateArea(segment, name, c.BuffersBlock, c.BufferCount), c.BufferCount) { _reference = reference };
        core._notifierHold = NotifierSemaphores.Attach(segment.Name, c.Notifier, core.MessageEvent, core.AckEvent);
        return core;
    }

    /// <summary>Writes an area's shape into its first (line-aligned) line.</summary>
    private static void WriteAreaHeader(SegmentAttachment segment, long payload, int bufferCount, int bufferSize)
    {
        long start = (payload + TopicLayout.LineSize - 1) & ~(long)(TopicLayout.LineSize - 1);
        ref TopicAreaHeader header = ref segment.Memory.Ref<TopicAreaHeader>(start);
        header.BufferSize = bufferSize;
        header.BufferCount = bufferCount;
        Volatile.Write(ref header.Magic, TopicAreaHeader.MagicValue);
    }

    /// <summary>
    /// The publisher's growth (eCAL: a message larger than the buffers): a new area of buffers at least
    /// <paramref name="size"/> bytes (twice the old size if that is more), the current buffers copied in
    /// (so nothing buffered is lost), published by one store of the block handle. The area before is kept
    /// until the next growth (a reader may still be copying from it), then freed.
    /// </summary>
    private Area Grow(Area old, int size)
    {
        int newSize = (int)Math.Min(MaxBufferSize, Math.Max(size, 2L * old.BufferSize));
        long bytes = TopicLayout.AreaBytes(BufferCount, newSize);
        if (bytes > SharedSegment.MaxAllocationSize)
        {
            throw new ArgumentException($"A message of {size} bytes would need buffers larger than the largest allocation.", nameof(size));
        }

        SharedHeap heap = _segment.Heap;
        if (!heap.TryAllocate((int)bytes, ShmOwnership.Process, BufferAreaTag, out ShmHandle block))
        {
            throw new OutOfSharedMemoryException($"Out of shared memory: {bytes} bytes to grow the buffers of topic '{Name}' in segment '{_segment.Name}'.{_segment.DescribeMemoryLimit()}");
        }

        long payload = heap.GetPayloadOffset(block, out _, out _);
        _segment.Memory.Span(payload, (int)bytes).Clear();
        WriteAreaHeader(_segment, payload, BufferCount, newSize);
        Area grown = LocateArea(_segment, Name, block.Value, BufferCount);
        for (int i = 0; i < BufferCount; i++)
        {
            long from = TopicLayout.BufferOffset(old.Start, i, old.BufferSize);
            long to = TopicLayout.BufferOffset(grown.Start, i, newSize);
            _segment.Memory.Span(from, TopicLayout.BufferHeaderSize + old.BufferSize).CopyTo(_segment.Memory.Span(to, TopicLayout.BufferHeaderSize + old.BufferSize));
        }

        heap.SetOwnership(block, ShmOwnership.Segment);
        ref TopicControl c = ref Control;
        ulong retired = Interlocked.Exchange(ref c.RetiredBlock, old.Block);
        Volatile.Write(ref c.BufferSize, newSize);
        Volatile.Write(ref c.BuffersBlock, block.Value);
        Volatile.Write(ref _area, grown);
        FreeBlock(heap, retired);
        return grown;
    }

    private static void FreeQuietly(SharedHeap heap, ShmHandle block)
    {
        if (!block.IsNull)
        {
            heap.Free(block);
        }
    }

    // ---------------------------------------------------------------- lifetime

    /// <summary>Whether the segment has a topic <paramref name="name"/> that is not removed.</summary>
    public static bool Exists(SegmentAttachment segment, string name)
    {
        using (segment.Directory.Lock())
        {
            return segment.Directory.TryFindLocked<TopicControl>(TopicLayout.ObjectName(name), out ObjectRef found) &&
                   Volatile.Read(ref segment.Memory.Ref<TopicControl>(found.ValueOffset).State) == TopicControl.StateReady;
        }
    }

    /// <summary>Whether the topic was removed (<see cref="Remove"/>): its messages can still be read, no new one is published.</summary>
    public bool IsRemoved => Volatile.Read(ref Control.State) == TopicControl.StateRemoved;

    /// <summary>Another holder of this instance's reference (a publisher or subscriber made from it); false once the reference is gone.</summary>
    public bool TryAddHolder()
    {
        int holders = Volatile.Read(ref _holders);
        while (holders > 0)
        {
            int seen = Interlocked.CompareExchange(ref _holders, holders + 1, holders);
            if (seen == holders)
            {
                return true;
            }

            holders = seen;
        }

        return false;
    }

    /// <summary>
    /// Holds the topic for a wait that sleeps on its words: a publisher or subscriber disposed by another
    /// thread meanwhile cannot destroy the topic (and free the words) under the sleeper; the wait sees the
    /// disposal when it wakes and the last of them lets go.
    /// </summary>
    /// <exception cref="ObjectDisposedException">Every holder let go already.</exception>
    public Hold HoldWhileWaiting() =>
        TryAddHolder() ? new Hold(this) : throw new ObjectDisposedException(nameof(SharedTopic), $"Topic '{Name}' was disposed.");

    /// <summary>The scope of <see cref="HoldWhileWaiting"/>.</summary>
    public readonly struct Hold(TopicCore core) : IDisposable
    {
        public void Dispose() => core.ReleaseHolder();
    }

    /// <summary>A holder lets go; the last gives the instance's reference back (and destroys the topic if nobody else holds it).</summary>
    public void ReleaseHolder()
    {
        if (Interlocked.Decrement(ref _holders) == 0)
        {
            ReleaseReference();
        }
    }

    /// <summary>Gives back this instance's reference, its notifier hold, and destroys the topic if that was the last live reference.</summary>
    private void ReleaseReference()
    {
        Volatile.Write(ref _holders, 0);
        NotifierSemaphores.Release(Interlocked.Exchange(ref _notifierHold, null));
        int reference = Interlocked.Exchange(ref _reference, -1);
        try
        {
            // A use of the mapping: this may run on a pool thread (the end of an asynchronous wait) while
            // another thread detaches the segment.
            using SegmentAttachment.BlockingUse use = _segment.EnterBlocking();
            ReleaseReferenceRow(_segment, Name, _controlBlock, _control, reference);
        }
        catch (ObjectDisposedException)
        {
            // Detached: the segment's own sweep drops this process's rows.
        }
    }

    private static void ReleaseReferenceRow(SegmentAttachment segment, string name, ShmHandle block, long control, int reference)
    {
        try
        {
            using (segment.Directory.Lock())
            {
                if (reference >= 0)
                {
                    Interlocked.CompareExchange(ref segment.Memory.Ref<uint>(TopicLayout.ReferenceOffset(control, reference)), 0, segment.Owner.Value);
                }

                DestroyIfUnreferencedLocked(segment, name, block, control);
            }
        }
        catch (InvalidSegmentException)
        {
            // A damaged directory or topic: nothing more to give back.
        }
    }

    /// <summary>Takes a row of the reference table for this instance (reusing a dead process's row); under the directory's lock.</summary>
    private static int ClaimReference(SegmentAttachment segment, string name, long control)
    {
        int row = OwnerRows.Claim(segment, control, TopicControl.ReferenceCount, TopicLayout.ReferenceOffset);
        return row >= 0 ? row : throw new InvalidOperationException($"Topic '{name}' is open {TopicControl.ReferenceCount} times already, the most it records.");
    }

    /// <summary>
    /// Removes the topic <paramref name="name"/>: no message is published any more, subscribers read what is
    /// buffered and then see <see cref="ChannelRemovedException"/>, nobody can open it, and its memory goes
    /// when the last process holding it lets go (now, if none does). False when there is no such topic.
    /// </summary>
    public static bool Remove(SegmentAttachment segment, string name)
    {
        ObjectDirectory directory = segment.Directory;
        using (directory.Lock())
        {
            if (!directory.TryFindLocked<TopicControl>(TopicLayout.ObjectName(name), out ObjectRef found))
            {
                return false; // none, or not a topic control block under that name
            }

            long control = found.ValueOffset;
            ref TopicControl c = ref segment.Memory.Ref<TopicControl>(control);
            int state = Volatile.Read(ref c.State);
            if (state == TopicControl.StateRemoved || Interlocked.CompareExchange(ref c.State, TopicControl.StateRemoved, state) != state)
            {
                return false;
            }

            // Wake every sleeper (publisher waiting for acknowledgements, subscribers waiting for messages) so
            // that it looks at the state: the futex words always, the semaphores when it has them.
            var messages = new EventCount(segment.Memory, control + TopicControl.MessageSequenceOffset, control + TopicControl.MessageWaitersOffset);
            var acks = new EventCount(segment.Memory, control + TopicControl.AckSequenceOffset, control + TopicControl.AckWaitersOffset);
            object? hold = null;
            try
            {
                hold = NotifierSemaphores.Attach(segment.Name, c.Notifier, messages, acks);
            }
            catch (Exception e) when (e is InvalidSegmentException or IOException or UnauthorizedAccessException)
            {
                // Its semaphores are gone or foreign: the futex words still move, and sleepers look again after a slice.
            }

            TryRecordCompletion(segment.Memory, control, segment.Owner, new ChannelRemovedException($"Topic '{name}' was removed."));
            messages.Signal();
            acks.Signal();
            NotifierSemaphores.Release(hold);
            DestroyIfUnreferencedLocked(segment, name, found.Block, control);
            return true;
        }
    }

    /// <summary>
    /// The end of a topic, under the directory's lock: destroys it (its buffer areas, its semaphores, its
    /// control block) when no live process holds a reference and it is removed, or ready and not
    /// persistent. Returns whether it was destroyed.
    /// </summary>
    private static bool DestroyIfUnreferencedLocked(SegmentAttachment segment, string name, ShmHandle block, long control)
    {
        ref TopicControl c = ref segment.Memory.Ref<TopicControl>(control);
        int state = Volatile.Read(ref c.State);
        bool persistent = (Volatile.Read(ref c.Flags) & TopicControl.FlagPersistent) != 0;
        if (state != TopicControl.StateRemoved && (state != TopicControl.StateReady || persistent))
        {
            return false;
        }

        if (OwnerRows.Census(segment, control, TopicControl.ReferenceCount, TopicLayout.ReferenceOffset) is not (0, _, 0)) // a live or a damaged row (maybe a live holder's) keeps it
        {
            return false;
        }

        Volatile.Write(ref c.State, TopicControl.StateRemoved);
        FreeBlock(segment.Heap, Interlocked.Exchange(ref c.BuffersBlock, 0));
        FreeBlock(segment.Heap, Interlocked.Exchange(ref c.RetiredBlock, 0));
        NotifierFields notifier = c.Notifier;
        NotifierSemaphores.Destroy(segment.Name, ref notifier);
        return segment.Directory.DestroyLocked(TopicLayout.ObjectName(name), block);
    }

    /// <summary>
    /// Frees a buffer area named by the control block, if it is one: a handle changed by a damaged or
    /// hostile peer to name another object's block (a channel's ring, say) is left alone, not freed under it.
    /// </summary>
    private static void FreeBlock(SharedHeap heap, ulong block)
    {
        if (block == 0)
        {
            return;
        }

        try
        {
            var handle = ShmHandle.FromValue(block);
            heap.GetPayloadOffset(handle, out _, out uint tag);
            if (tag == BufferAreaTag)
            {
                heap.Free(handle);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // Freed already, or not a block (a damaged record): nothing to give back.
        }
    }

    /// <summary>
    /// Destroys the topic behind directory entry <paramref name="objectName"/> if it has references and all
    /// of them are dead processes' (the last holder died); for the segment's sweep at attach and when dead
    /// processes are reclaimed. Under the directory's lock.
    /// </summary>
    internal static bool ReleaseDeadReferencesLocked(SegmentAttachment segment, string objectName)
    {
        if (!segment.Directory.TryFindLocked<TopicControl>(objectName, out ObjectRef found))
        {
            return false;
        }

        (int live, int dead, int damaged) = OwnerRows.Census(segment, found.ValueOffset, TopicControl.ReferenceCount, TopicLayout.ReferenceOffset);
        return live == 0 && damaged == 0 && dead > 0 && DestroyIfUnreferencedLocked(segment, objectName[TopicLayout.ObjectPrefix.Length..], found.Block, found.ValueOffset);
    }

    /// <summary>
    /// Records which typed messages the topic carries (the first typed publisher or subscriber claims it),
    /// or checks that <paramref name="fingerprint"/> is that type: writer and reader must agree, as on a
    /// serialized channel. Byte messages are not typed and need no claim.
    /// </summary>
    /// <exception cref="InvalidCastException">The topic carries another type, or the same type with another serializer.</exception>
    public void ClaimMessageType(ulong fingerprint, string description)
    {
        ref TopicControl c = ref Control;
        ulong stored = Interlocked.CompareExchange(ref c.MessageTypeFingerprint, fingerprint, 0);
        if (stored == 0)
        {
            Span<byte> text = _segment.Memory.Span(_control + TopicControl.MessageTypeOffset, TopicControl.MessageTypeCapacity);
            text.Clear();
            System.Text.Unicode.Utf8.FromUtf16(description, text, out _, out int length, replaceInvalidSequences: true, isFinalBlock: true);
            Volatile.Write(ref c.MessageTypeLength, length);
            return;
        }

        if (stored != fingerprint)
        {
            throw new InvalidCastException($"Topic '{Name}' carries {StoredMessageType() ?? "another message type"}; this end asks for {description}. Publisher and subscribers must use the same type and serializer.");
        }
    }

    /// <summary>The description of the topic's typed messages, or null when none was claimed yet.</summary>
    public string? StoredMessageType()
    {
        int length = Math.Clamp(Volatile.Read(ref Control.MessageTypeLength), 0, TopicControl.MessageTypeCapacity);
        return Volatile.Read(ref Control.MessageTypeFingerprint) == 0 || length == 0
            ? null
            : System.Text.Encoding.UTF8.GetString(_segment.Memory.Span(_control + TopicControl.MessageTypeOffset, length));
    }

    // ---------------------------------------------------------------- publisher

    /// <summary>Takes the publisher lease: refused while another live process holds it, taken over from a dead one.</summary>
    public void TakePublisherLease()
    {
        uint me = _segment.Owner.Value;
        ref uint lease = ref Control.PublisherLease;
        while (true)
        {
            uint holder = Volatile.Read(ref lease);
            if (holder == me)
            {
                throw new InvalidOperationException($"This process publishes on topic '{Name}' already: one publisher per process.");
            }

            if (holder != 0 && _segment.Processes.IsAlive(new OwnerId(holder)))
            {
                throw new InvalidOperationException($"Topic '{Name}' has a publisher in another live process ({new OwnerId(holder)}); a new one can take over once it is disposed or dead.");
            }

            if (Interlocked.CompareExchange(ref lease, me, holder) == holder)
            {
                return;
            }
        }
    }

    public void ReleasePublisherLease() => Interlocked.CompareExchange(ref Control.PublisherLease, 0, _segment.Owner.Value);

    /// <summary>Whether a live process holds the publisher lease.</summary>
    public bool IsPublisherAlive
    {
        get
        {
            uint holder = Volatile.Read(ref Control.PublisherLease);
            return holder != 0 && _segment.Processes.IsAlive(new OwnerId(holder));
        }
    }

    /// <summary>Writes message <c>NextSequence</c> into its buffer (a seqlock: odd version while written) and publishes it.</summary>
    public long Publish(ReadOnlySpan<byte> payload, bool zeroCopy)
    {
        long buffer = BeginMessage(payload.Length, out long sequence);
        payload.CopyTo(_segment.Memory.Span(buffer + TopicLayout.BufferHeaderSize, payload.Length));
        return EndMessage(buffer, sequence, payload.Length, zeroCopy);
    }

    /// <summary>
    /// Starts message <c>NextSequence</c>: waits for acknowledgements and borrowers as the options say, grows
    /// the buffers if <paramref name="size"/> needs it, and marks the buffer as being written. Returns the
    /// buffer's offset; the payload (up to the buffer's size) is written after its header.
    /// </summary>
    public long BeginMessage(int size, out long sequence)
    {
        if (size < 0 || size > MaxBufferSize)
        {
            throw new ArgumentException($"A message of {size} bytes exceeds the largest topic buffer ({MaxBufferSize} bytes).", nameof(size));
        }

        if (IsRemoved)
        {
            throw new ChannelRemovedException($"Topic '{Name}' was removed from segment '{_segment.Name}'.");
        }

        if (IsCompleted)
        {
            throw ClosedException();
        }

        Area area = CurrentArea();
        if (size > area.BufferSize)
        {
            area = Grow(area, size);
        }

        ref TopicControl c = ref Control;
        sequence = Volatile.Read(ref c.NextSequence);
        if (sequence < 0)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a negative sequence.");
        }

        WaitForAcknowledgements(sequence);
        int index = (int)(sequence % BufferCount);
        WaitForBorrowers(index);
        long buffer = TopicLayout.BufferOffset(area.Start, index, area.BufferSize);
        Volatile.Write(ref _segment.Memory.Ref<TopicBufferHeader>(buffer).Version, (2 * sequence) + 1);
        Interlocked.MemoryBarrier();
        return buffer;
    }

    /// <summary>Completes the message begun by <see cref="BeginMessage"/>: the header, then the even version, then the sequence.</summary>
    public long EndMessage(long buffer, long sequence, int size, bool zeroCopy)
    {
        ref TopicControl c = ref Control;
        ref TopicBufferHeader header = ref _segment.Memory.Ref<TopicBufferHeader>(buffer);
        header.Id = sequence;
        header.Clock = ++c.Clock;
        header.TimeUtcTicks = DateTime.UtcNow.Ticks;
        header.Size = size;
        bool hash = HashPayloads;
        header.Flags = (hash ? TopicBufferHeader.FlagHashed : 0) | (zeroCopy ? TopicBufferHeader.FlagZeroCopy : 0);
        header.Hash = hash ? XxHash64.HashToUInt64(_segment.Memory.Span(buffer + TopicLayout.BufferHeaderSize, size)) : 0;
        Volatile.Write(ref header.Version, (2 * sequence) + 2);
        Volatile.Write(ref c.NextSequence, sequence + 1);
        MessageEvent.Signal();
        return sequence;
    }

    /// <summary>The payload bytes of a begun message's buffer.</summary>
    public Span<byte> PayloadOf(long buffer, int size) => _segment.Memory.Span(buffer + TopicLayout.BufferHeaderSize, size);

    /// <summary>
    /// With an ack timeout: waits until every live subscriber has read message <paramref name="sequence"/> - 1
    /// (<see cref="TopicAckPolicy.PreviousMessage"/>), or the message the buffer of <paramref name="sequence"/>
    /// still holds (<see cref="TopicAckPolicy.FreeBuffer"/>), or the timeout.
    /// </summary>
    private void WaitForAcknowledgements(long sequence)
    {
        TimeSpan timeout = AckTimeout;
        long required = AckPolicy == TopicAckPolicy.FreeBuffer ? sequence - BufferCount : sequence - 1;
        if (timeout <= TimeSpan.Zero || required < 0)
        {
            return;
        }

        // Subscribers usually acknowledge within microseconds: spin a little before sleeping. Only the busy
        // rounds of SpinWait (its first ten, no yields): a yield hands the CPU to whichever of the many
        // processes of a fan-out is runnable, which measured 6x slower than sleeping at once (benchmarks.md).
        var spinner = default(SpinWait);
        for (int i = 0; i < SpinRounds; i++)
        {
            if (AllAcknowledged(required) || IsRemoved)
            {
                return;
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        using SegmentAttachment.BlockingUse use = _segment.EnterBlocking();
        using Hold hold = HoldWhileWaiting();
        while (true)
        {
            int token = AckEvent.PrepareWait();
            if (AllAcknowledged(required) || IsRemoved)
            {
                AckEvent.CancelWait();
                return;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                AckEvent.CancelWait();
                return; // eCAL: past the timeout the publisher goes on, and the slow subscriber sees a gap
            }

            AckEvent.Wait(token, TimeSpan.FromMilliseconds(Math.Min(left, 50)));
            _segment.ThrowIfDetached();
        }
    }

    /// <summary>
    /// Before buffer <paramref name="index"/> is overwritten: waits while a live subscriber borrows it (a
    /// zero-copy receive), at most the acknowledgement timeout (none without one), then overwrites
    /// anyway; the borrower sees it on release (<see cref="TopicMessage.IsIntact"/> false).
    /// </summary>
    private void WaitForBorrowers(int index)
    {
        TimeSpan timeout = AckTimeout;
        if (timeout <= TimeSpan.Zero || !IsBorrowed(index))
        {
            return;
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        using SegmentAttachment.BlockingUse use = _segment.EnterBlocking();
        using Hold hold = HoldWhileWaiting();
        while (true)
        {
            int token = AckEvent.PrepareWait();
            long left = deadline - Environment.TickCount64;
            if (!IsBorrowed(index) || left <= 0)
            {
                AckEvent.CancelWait();
                return;
            }

            AckEvent.Wait(token, TimeSpan.FromMilliseconds(Math.Min(left, 50)));
            _segment.ThrowIfDetached();
        }
    }

    private bool IsBorrowed(int index)
    {
        for (int i = 0; i < TopicControl.SubscriberCount; i++)
        {
            ref TopicSubscriberRow row = ref Row(i);
            uint owner = Volatile.Read(ref row.Owner);
            if (owner != 0 && Volatile.Read(ref row.HeldBuffer) == index + 1 && _segment.Processes.IsAlive(new OwnerId(owner)))
            {
                return true;
            }
        }

        return false;
    }

    private bool AllAcknowledged(long sequence)
    {
        for (int i = 0; i < TopicControl.SubscriberCount; i++)
        {
            ref TopicSubscriberRow row = ref Row(i);
            uint owner = Volatile.Read(ref row.Owner);
            if (owner != 0 && Volatile.Read(ref row.Acknowledged) < sequence && _segment.Processes.IsAlive(new OwnerId(owner)))
            {
                return false;
            }
        }

        return true;
    }

    // ---------------------------------------------------------------- subscribers

    public ref TopicSubscriberRow Row(int index) => ref _segment.Memory.Ref<TopicSubscriberRow>(TopicLayout.SubscriberOffset(_control, index));

    /// <summary>Takes a subscriber row (reusing a dead process's); the subscriber starts with the last <see cref="HistoryDepth"/> messages.</summary>
    public int AddSubscriber()
    {
        int i = OwnerRows.Claim(_segment, _control, TopicControl.SubscriberCount, TopicLayout.SubscriberOffset);
        if (i < 0)
        {
            throw new InvalidOperationException($"Topic '{Name}' already has {TopicControl.SubscriberCount} subscribers, the most it records.");
        }

        ref TopicSubscriberRow row = ref Row(i);
        long next = Math.Max(0, Volatile.Read(ref Control.NextSequence));
        long start = Math.Max(0, next - HistoryDepth);
        row.Drops = 0;
        row.HeldBuffer = 0;
        // Nothing owed for what was sent before it joined; with FreeBuffer, its history is owed (the
        // publisher waits, at most its timeout, before it overwrites what the joiner is to read first).
        row.Acknowledged = AckPolicy == TopicAckPolicy.FreeBuffer ? start - 1 : next - 1;
        Volatile.Write(ref row.Position, start);
        return i;
    }

    public void RemoveSubscriber(int index)
    {
        ref TopicSubscriberRow row = ref Row(index);
        Interlocked.CompareExchange(ref row.Owner, 0, _segment.Owner.Value);
        AckEvent.Signal(); // a publisher waiting for this subscriber's acknowledgement goes on
    }
}
