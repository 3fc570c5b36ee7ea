using System.IO.Hashing;
using SharedMemChannels.Common;

namespace SharedMemChannels.Topics;

/// <content>Reading: a subscriber's copying receive and its zero-copy borrow.</content>
internal sealed partial class TopicCore
{
    /// <summary>
    /// Copies the subscriber's next message into <paramref name="destination"/>; false when there is none
    /// yet. A destination smaller than the message is an <see cref="ArgumentException"/>, and the message
    /// stays to be read again.
    /// </summary>
    public bool TryReceive(int index, Span<byte> destination, out TopicMessageInfo info)
    {
        var sink = new SpanSink(destination);
        ReceiveOutcome outcome = TryReceive(index, ref sink, out info, out int size);
        if (outcome == ReceiveOutcome.TooSmall)
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes; the message has {size}.", nameof(destination));
        }

        return outcome == ReceiveOutcome.Received;
    }

    /// <summary>
    /// Copies the subscriber's next message into the room <paramref name="sink"/> gives for its size.
    /// <see cref="ReceiveOutcome.None"/> when there is none yet; <see cref="ReceiveOutcome.TooSmall"/> (with
    /// the message's <paramref name="size"/>) when the room is smaller, the message then staying to be read
    /// again. Messages overwritten before they were read are counted as drops and skipped.
    /// </summary>
    public ReceiveOutcome TryReceive<TSink>(int index, ref TSink sink, out TopicMessageInfo info, out int size)
        where TSink : IMessageSink, allows ref struct
    {
        ref TopicSubscriberRow row = ref Row(index);
        long dropped = 0;
        size = 0;
        info = default;
        for (int attempt = 0; attempt < 1_000; attempt++)
        {
            long next = Volatile.Read(ref Control.NextSequence);
            long position = Volatile.Read(ref row.Position);
            if (position < 0 || next < 0)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a negative position or sequence.");
            }

            if (position >= next)
            {
                break;
            }

            if (next - position > BufferCount)
            {
                // Overwritten before it was read: the slow subscriber jumps to the oldest buffer still whole.
                dropped += next - BufferCount - position;
                position = next - BufferCount;
                Volatile.Write(ref row.Position, position);
            }

            Area area = CurrentArea();
            long buffer = TopicLayout.BufferOffset(area.Start, (int)(position % BufferCount), area.BufferSize);
            ref TopicBufferHeader header = ref _segment.Memory.Ref<TopicBufferHeader>(buffer);
            long version = Volatile.Read(ref header.Version);
            if (version != (2 * position) + 2)
            {
                if (version > (2 * position) + 2)
                {
                    dropped++; // a newer message is in it already
                    Volatile.Write(ref row.Position, position + 1);
                }

                continue; // still being written: look again
            }

            // The copy is optimistic: the publisher may start on this buffer's next message meanwhile, so what
            // was read is judged only once the version is seen unchanged after it (a torn read is a drop). The
            // size too: a destination judged too small for a torn size is no verdict.
            TopicBufferHeader copy = header;
            bool sizeValid = copy.Size >= 0 && copy.Size <= area.BufferSize;
            Span<byte> room = default;
            bool fits = false;
            if (sizeValid)
            {
                room = sink.Room(copy.Size);
                fits = room.Length >= copy.Size;
                if (fits)
                {
                    room = room[..copy.Size];
                    _segment.Memory.Span(buffer + TopicLayout.BufferHeaderSize, copy.Size).CopyTo(room);
                }
            }

            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref header.Version) != version)
            {
                dropped++; // overwritten while we copied: not a torn message, a lost one
                Volatile.Write(ref row.Position, position + 1);
                continue;
            }

            if (!sizeValid || copy.Id != position)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a damaged message header (size {copy.Size}, id {copy.Id}).");
            }

            if (!fits)
            {
                AddDrops(ref row, dropped);
                size = copy.Size;
                return ReceiveOutcome.TooSmall; // the message stays where it is
            }

            Volatile.Write(ref row.Position, position + 1);
            AddDrops(ref row, dropped);
            Volatile.Write(ref row.Acknowledged, position);
            AckEvent.Signal();
            if ((copy.Flags & TopicBufferHeader.FlagHashed) != 0 && XxHash64.HashToUInt64(room) != copy.Hash)
            {
                throw new InvalidDataException($"Message {position} of topic '{Name}' does not match its hash: its payload was damaged.");
            }

            sink.Commit(copy.Size);
            size = copy.Size;
            info = new TopicMessageInfo(copy.Id, copy.Clock, new DateTime(Math.Clamp(copy.TimeUtcTicks, 0, DateTime.MaxValue.Ticks), DateTimeKind.Utc),
                copy.Size, copy.Hash, (copy.Flags & TopicBufferHeader.FlagZeroCopy) != 0, dropped);
            return ReceiveOutcome.Received;
        }

        // Nothing to read (or a publisher rewriting faster than we can copy: try again later).
        AddDrops(ref row, dropped);
        return ReceiveOutcome.None;
    }

    private static void AddDrops(ref TopicSubscriberRow row, long dropped)
    {
        if (dropped != 0)
        {
            Interlocked.Add(ref row.Drops, dropped);
        }
    }

    /// <summary>
    /// Borrows the subscriber's next message in place (zero copy): the buffer is marked held in the
    /// subscriber's row, so the publisher waits (at most its acknowledgement timeout) before it overwrites
    /// it. False when there is no message yet. One borrow at a time per subscriber.
    /// </summary>
    public bool TryBorrow(int index, out long payload, out long version, out TopicMessageInfo info)
    {
        ref TopicSubscriberRow row = ref Row(index);
        int held = Volatile.Read(ref row.HeldBuffer);
        if ((uint)held > (uint)BufferCount)
        {
            // Index + 1 of a buffer, or 0: anything else was never written by a subscriber.
            ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a damaged subscriber row (held buffer {held} of {BufferCount}).");
        }

        if (held != 0)
        {
            throw new InvalidOperationException("This subscriber still holds a borrowed message: dispose it first.");
        }

        long dropped = 0;
        for (int attempt = 0; attempt < 1_000; attempt++)
        {
            long next = Volatile.Read(ref Control.NextSequence);
            long position = Volatile.Read(ref row.Position);
            if (position < 0 || next < 0)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a negative position or sequence.");
            }

            if (position >= next)
            {
                break;
            }

            if (next - position > BufferCount)
            {
                dropped += next - BufferCount - position;
                position = next - BufferCount;
                Volatile.Write(ref row.Position, position);
            }

            int buffer = (int)(position % BufferCount);
            Area area = CurrentArea();
            long start = TopicLayout.BufferOffset(area.Start, buffer, area.BufferSize);
            ref TopicBufferHeader header = ref _segment.Memory.Ref<TopicBufferHeader>(start);
            long expected = (2 * position) + 2;

            // Hold first (a full fence), then check the version: the publisher looks at holds after it
            // decides to write, so either it sees the hold or we see its new version.
            Volatile.Write(ref row.HeldVersion, expected);
            Interlocked.Exchange(ref row.HeldBuffer, buffer + 1);
            long seen = Volatile.Read(ref header.Version);
            if (seen != expected)
            {
                Volatile.Write(ref row.HeldBuffer, 0);
                if (seen > expected)
                {
                    dropped++;
                    Volatile.Write(ref row.Position, position + 1);
                }

                continue;
            }

            TopicBufferHeader copy = header;
            if (copy.Size < 0 || copy.Size > area.BufferSize || copy.Id != position)
            {
                Volatile.Write(ref row.HeldBuffer, 0);
                ThrowHelper.ThrowDamaged(_segment.Name, $"topic '{Name}' has a damaged message header (size {copy.Size}, id {copy.Id}).");
            }

            payload = start + TopicLayout.BufferHeaderSize;
            version = expected;
            if ((copy.Flags & TopicBufferHeader.FlagHashed) != 0 && XxHash64.HashToUInt64(_segment.Memory.Span(payload, copy.Size)) != copy.Hash)
            {
                Volatile.Write(ref row.HeldBuffer, 0);
                Volatile.Write(ref row.Position, position + 1);
                throw new InvalidDataException($"Message {position} of topic '{Name}' does not match its hash: its payload was damaged.");
            }

            Volatile.Write(ref row.Position, position + 1);
            Interlocked.Add(ref row.Drops, dropped);
            info = new TopicMessageInfo(copy.Id, copy.Clock, new DateTime(Math.Clamp(copy.TimeUtcTicks, 0, DateTime.MaxValue.Ticks), DateTimeKind.Utc),
                copy.Size, copy.Hash, (copy.Flags & TopicBufferHeader.FlagZeroCopy) != 0, dropped);
            return true;
        }

        if (dropped != 0)
        {
            Interlocked.Add(ref row.Drops, dropped);
        }

        payload = 0;
        version = 0;
        info = default;
        return false;
    }

    /// <summary>Ends a borrow: acknowledges the message and frees the buffer for the publisher; false when it was overwritten meanwhile.</summary>
    public bool ReleaseBorrow(int index, long id, long payload, long version)
    {
        ref TopicSubscriberRow row = ref Row(index);
        ref TopicBufferHeader header = ref _segment.Memory.Ref<TopicBufferHeader>(payload - TopicLayout.BufferHeaderSize);
        bool intact = Volatile.Read(ref header.Version) == version;
        Volatile.Write(ref row.HeldBuffer, 0);
        Volatile.Write(ref row.Acknowledged, id);
        AckEvent.Signal();
        return intact;
    }

    /// <summary>Whether a borrowed buffer still holds the message it was borrowed for.</summary>
    public bool IsIntact(long payload, long version) =>
        Volatile.Read(ref _segment.Memory.Ref<TopicBufferHeader>(payload - TopicLayout.BufferHeaderSize).Version) == version;

    /// <summary>Messages waiting for subscriber <paramref name="index"/> (at most the buffer count).</summary>
    public long Pending(int index) =>
        Math.Clamp(Volatile.Read(ref Control.NextSequence) - Volatile.Read(ref Row(index).Position), 0, BufferCount);
}
