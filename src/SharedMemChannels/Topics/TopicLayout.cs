using System.Runtime.InteropServices;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Topics;

/// <summary>
/// The one descriptor of a topic's shared layout: the control block (a named object
/// <c>shmc.topic.&lt;name&gt;</c>), its subscriber table, and the buffers (eCAL's memory files, here
/// blocks of the segment's heap) with the message header each carries. Every offset is named here.
/// </summary>
/// <remarks>
/// <code>
/// control block
///   line 0      identity and shape (magic, version, buffer count and size, history depth, ack timeout, flags,
///               the buffer area's heap block, state), written whole by the directory's find-or-construct;
///               the notifier (futex or two semaphores: messages, acknowledgements); the fingerprint of
///               the serializer and type of the topic's typed messages (0 until a typed end claims it)
///   line 1      the publisher lease (OwnerId), the next sequence, the publisher's clock
///   line 2      the "new message" event count; line 3 the "acknowledged" event count
///   lines 4..35 subscriber table: 64 rows of { owner, position, drops, acknowledged, held buffer and version }
///   lines 36,37 reference table: 64 OwnerIds, one per open instance (a topic without a live one goes,
///               unless it persists: RaftLib's reference counting, as channels have it)
///   line 38     the typed messages' description (UTF-8: "type serialized by identity")
///   lines 39-49 the completion record (the publisher's Complete, or Remove): { state | completer OwnerId },
///               type-name and message lengths, then the exception's type name (256 B) and message (1 KiB)
/// buffer area (one heap block): a line of its own shape (magic, buffer size, buffer count), then
///   BufferCount buffers of a 64-byte header and BufferSize payload bytes
///   header: version (seqlock: odd while written), id (sequence), clock, time (UTC ticks), size, flags, hash
/// A message larger than the buffers makes the publisher grow them: a new area (twice as large, or the
/// message's size) with the current buffers copied in, published by one store of BuffersBlock; the old
/// area is kept until the next growth, so a reader still copying from it reads what was there.
/// </code>
/// A message of sequence s lives in buffer s % BufferCount. The publisher never waits for readers of an
/// older buffer (multi-buffering); a reader copies optimistically and checks the version afterwards, so a
/// buffer overwritten while it was read is a drop, never a torn message.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct TopicControl
{
    public const int Size = 6400;

    /// <summary>"SHMCTOP1", little-endian.</summary>
    public const ulong MagicValue = 0x3150_4F54_434D_4853;

    public const int CurrentVersion = 3;

    public const int FlagHashPayloads = 1;
    public const int FlagPersistent = 2;
    public const int FlagAckFreeBuffer = 4;

    public const int StateLayingOut = 0;
    public const int StateReady = 1;
    public const int StateRemoved = 2;

    public const int NextSequenceOffset = 136;
    public const int MessageSequenceOffset = 256;
    public const int MessageWaitersOffset = 260;
    public const int AckSequenceOffset = 384;
    public const int AckWaitersOffset = 388;
    public const int SubscribersOffset = 512;
    public const int SubscriberCount = 64;
    public const int SubscriberSize = 64;
    public const int ReferencesOffset = 4608;
    public const int ReferenceCount = 64;
    public const int MessageTypeOffset = 4864;
    public const int MessageTypeCapacity = 128;
    public const int CompletionStateOffset = 4992;          // long: RingCompletionState | completer OwnerId << 32
    public const int CompletionTypeLengthOffset = 5000;
    public const int CompletionMessageLengthOffset = 5004;
    public const int CompletionTypeOffset = 5120;
    public const int CompletionTypeCapacity = 256;
    public const int CompletionMessageOffset = 5376;
    public const int CompletionMessageCapacity = 1024;

    // Line 0.
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public int Version;
    [FieldOffset(12)] public int BufferCount;
    [FieldOffset(16)] public int BufferSize;      // payload bytes per buffer (min size + reserve)
    [FieldOffset(20)] public int HistoryDepth;
    [FieldOffset(24)] public int AckTimeoutMs;
    [FieldOffset(28)] public int Flags;
    [FieldOffset(32)] public ulong BuffersBlock;  // heap handle of the buffer area
    [FieldOffset(40)] public long CreatedUnixMs;
    [FieldOffset(48)] public int State;           // StateLayingOut, StateReady, StateRemoved
    [FieldOffset(52)] public int MessageTypeLength; // bytes of the description at MessageTypeOffset
    [FieldOffset(56)] public ulong RetiredBlock;  // the area before the last growth, freed at the next one
    [FieldOffset(64)] public NotifierFields Notifier; // first semaphore: messages; second: acknowledgements
    [FieldOffset(80)] public ulong MessageTypeFingerprint; // serializer and type of typed messages; 0 for none yet
    [FieldOffset(88)] public int CreatedBufferSize; // MinSize + Reserve as created (BufferSize grows)

    // Line 1.
    [FieldOffset(128)] public uint PublisherLease;
    [FieldOffset(NextSequenceOffset)] public long NextSequence;
    [FieldOffset(144)] public long Clock;

    // Lines 2 and 3.
    [FieldOffset(MessageSequenceOffset)] public int MessageSequence;
    [FieldOffset(MessageWaitersOffset)] public int MessageWaiters;
    [FieldOffset(AckSequenceOffset)] public int AckSequence;
    [FieldOffset(AckWaitersOffset)] public int AckWaiters;
}

/// <summary>A row of a topic's subscriber table.</summary>
[StructLayout(LayoutKind.Explicit, Size = TopicControl.SubscriberSize)]
internal struct TopicSubscriberRow
{
    /// <summary>The subscribed process's OwnerId; 0 for a free row.</summary>
    [FieldOffset(0)] public uint Owner;

    /// <summary>The next sequence this subscriber reads.</summary>
    [FieldOffset(8)] public long Position;

    /// <summary>Messages this subscriber missed (overwritten before it read them).</summary>
    [FieldOffset(16)] public long Drops;

    /// <summary>The last sequence it acknowledged (read), -1 for none.</summary>
    [FieldOffset(24)] public long Acknowledged;

    /// <summary>The buffer this subscriber borrows for a zero-copy receive (index + 1; 0 for none).</summary>
    [FieldOffset(32)] public int HeldBuffer;

    /// <summary>The version of the held buffer when it was borrowed.</summary>
    [FieldOffset(40)] public long HeldVersion;
}

/// <summary>The header of one buffer: eCAL's message header, with the seqlock version in front.</summary>
[StructLayout(LayoutKind.Explicit, Size = TopicLayout.BufferHeaderSize)]
internal struct TopicBufferHeader
{
    public const int FlagHashed = 1;
    public const int FlagZeroCopy = 2;

    /// <summary>2s + 1 while message s is written, 2s + 2 once it is complete; 0 for a buffer never written.</summary>
    [FieldOffset(0)] public long Version;
    [FieldOffset(8)] public long Id;
    [FieldOffset(16)] public long Clock;
    [FieldOffset(24)] public long TimeUtcTicks;
    [FieldOffset(32)] public int Size;
    [FieldOffset(36)] public int Flags;
    [FieldOffset(40)] public ulong Hash;
}

/// <summary>The first line of a buffer area: its shape, fixed for the area's life (readers take it from here, not from the control block).</summary>
[StructLayout(LayoutKind.Explicit, Size = TopicLayout.LineSize)]
internal struct TopicAreaHeader
{
    /// <summary>"SHMCTBA1", little-endian.</summary>
    public const ulong MagicValue = 0x3141_4254_434D_4853;

    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public int BufferSize;
    [FieldOffset(12)] public int BufferCount;
}

/// <summary>Offsets of a topic's layout, computed here only.</summary>
internal static class TopicLayout
{
    public const string ObjectPrefix = "shmc.topic.";

    public const int MaxNameLength = SharedName.MaxLength - 11;

    public const int BufferHeaderSize = 64;

    public const int LineSize = 128;

    public static string ObjectName(string name) => ObjectPrefix + name;

    /// <summary>Bytes of one buffer (header and payload, line-aligned).</summary>
    public static long BufferStride(int bufferSize) => (BufferHeaderSize + (long)bufferSize + LineSize - 1) / LineSize * LineSize;

    /// <summary>Bytes of a buffer area: its header line, the buffers, and a line for alignment.</summary>
    public static long AreaBytes(int bufferCount, int bufferSize) => LineSize + (bufferCount * BufferStride(bufferSize)) + LineSize;

    /// <summary>Where buffer <paramref name="index"/> starts, from the area's aligned start.</summary>
    public static long BufferOffset(long area, int index, int bufferSize) => area + LineSize + (index * BufferStride(bufferSize));

    /// <summary>Where reference row <paramref name="index"/> (an OwnerId) is, from the control block's start.</summary>
    public static long ReferenceOffset(long control, int index) => control + TopicControl.ReferencesOffset + ((long)index * sizeof(uint));

    /// <summary>Where subscriber row <paramref name="index"/> is, from the control block's start.</summary>
    public static long SubscriberOffset(long control, int index) => control + TopicControl.SubscribersOffset + ((long)index * TopicControl.SubscriberSize);
}
