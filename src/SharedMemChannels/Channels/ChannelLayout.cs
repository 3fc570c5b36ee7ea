using System.Runtime.InteropServices;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Channels;

/// <summary>
/// The one descriptor of a channel's control block: the named object that stands for a channel in
/// its segment's directory. It records what shapes the shared layout (element type, capacity, full
/// mode, single reader / writer), where the ring is, which processes hold the single reader and writer
/// ends, and the table of processes attached to the channel. The ring itself has its own descriptor
/// (<see cref="Rings.RingLayout"/>).
/// </summary>
/// <remarks>
/// <code>
/// line 0     identity and shape, written by the initializer before State is published
///            (version 2 adds the element kind, the largest record, the channel's random id and
///            the number of owned heap handles in an element; a serialized channel adds the
///            fingerprint of its serializer identity and element type name); then two lifetime
///            words written under the directory's lock or once: whether a reader has seen the
///            completion, and the references taken (the cross-check of the endpoint table)
/// line 1     the reader and writer leases (single reader / writer), written on first use;
///            bytes 192..255: the offsets inside an element of its owned heap handles (version 2)
/// line 2     the completion event count: bumped when the channel is completed and when it drains;
///            bytes 264..383: a serialized channel's serializer identity (UTF-8), written before ready
/// lines 3..6 the endpoint table: 64 entries of { owner id, roles }
/// line 7     the element type's name (UTF-8), for people and tools; identity is the fingerprint
///            (a serialized channel: the name of the .NET type it carries, not of its record slot)
/// </code>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct ChannelControl
{
    public const int Size = 1024;

    /// <summary>"SHMCCHN1", little-endian.</summary>
    public const ulong MagicValue = 0x314E_4843_434D_4853;

    /// <summary>2: element kind, record size limit, channel id and the owned-handle table.</summary>
    public const int CurrentVersion = 2;

    public const int StateInitializing = 0;
    public const int StateReady = 1;

    /// <summary>Set (with the completion) when the channel was removed by name: nobody may open it again.</summary>
    public const int StateRemoved = 2;


    public const int FlagSingleReader = 1;
    public const int FlagSingleWriter = 2;

    /// <summary>An unbounded channel: <see cref="Capacity"/> is its chunk capacity, the ring is a chain of chunks.</summary>
    public const int FlagUnbounded = 4;

    /// <summary>The channel is not destroyed with its last reference (<see cref="SharedChannelOptions.Persistent"/>).</summary>
    public const int FlagPersistent = 8;

    /// <summary>
    /// The channel goes with its last reference even if it holds items or a completion no reader has seen
    /// (<see cref="SharedChannelOptions.RetainUndelivered"/> false): RaftLib's rule. Without it such a channel is retained.
    /// </summary>
    public const int FlagDiscardUndelivered = 16;

    /// <summary>The channel is counted in its segment's <see cref="Segments.SegmentHeader.ChannelCount"/> (uncounted when destroyed).</summary>
    public const int FlagCounted = 32;

    public const int CompletionSequenceOffset = 256;
    public const int CompletionWaitersOffset = 260;

    public const int EndpointsOffset = 384;
    public const int EndpointCount = 64;
    public const int EndpointSize = 8;

    /// <summary>
    /// The table of offsets, inside an element, of the heap handles the element owns (a record slot's
    /// handle, a user struct's <see cref="ShmString"/> and <see cref="ShmVector{T}"/> fields): any process
    /// frees queued items' storage with it when the channel is destroyed, without knowing the type.
    /// </summary>
    public const int OwnedHandleOffsetsOffset = 192;

    /// <summary>The most owned handles an element may hold (the table's length).</summary>
    public const int MaxOwnedHandles = 16;

    public const int ElementKindPlain = 0;
    public const int ElementKindRecords = 1;
    public const int ElementKindSerialized = 2;

    /// <summary>
    /// A serialized channel's serializer identity (<see cref="ISharedSerializer{T}.Identity"/>, UTF-8, cut at
    /// <see cref="SerializerIdentityCapacity"/> bytes), for messages and tools; the check is the fingerprint.
    /// Written once before the channel is ready, beside the completion event count that it never disturbs.
    /// </summary>
    public const int SerializerIdentityOffset = 264;

    public const int SerializerIdentityCapacity = 120;

    public const int ElementTypeNameOffset = 896;
    public const int ElementTypeNameCapacity = 128;

    // Line 0.
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public int Version;
    [FieldOffset(12)] public int State;          // initializing, ready, removed
    [FieldOffset(16)] public uint Initializer;   // the OwnerId laying the channel out, until ready
    [FieldOffset(20)] public int Capacity;
    [FieldOffset(24)] public int FullMode;
    [FieldOffset(28)] public int Flags;
    [FieldOffset(32)] public ulong ElementFingerprint;
    [FieldOffset(40)] public int ElementSize;
    [FieldOffset(44)] public int RingKind;
    [FieldOffset(48)] public ulong RingBlock;    // the heap block holding the ring
    [FieldOffset(56)] public long RingOffset;    // where the ring starts in it (line-aligned)
    [FieldOffset(64)] public long RingLength;
    [FieldOffset(72)] public long CreatedUnixMs;
    [FieldOffset(80)] public int ElementTypeNameLength;
    [FieldOffset(84)] public int ElementKind;       // ElementKindPlain, ElementKindRecords, ElementKindSerialized
    [FieldOffset(88)] public int MaxRecordSize;     // records: the largest payload a writer may allocate
    [FieldOffset(92)] public int OwnedHandleCount;  // entries of the owned-handle table, 0..MaxOwnedHandles
    [FieldOffset(96)] public ulong ChannelId;       // random, never 0: stamped into the records of this channel
    [FieldOffset(104)] public ulong SerializerFingerprint; // serialized elements: FNV-1a 64 of the serializer identity and the element type name; 0 otherwise
    [FieldOffset(112)] public int SerializerIdentityLength; // bytes of the identity text at SerializerIdentityOffset
    [FieldOffset(116)] public int CompletionSeen;   // 1 once a reader process saw the channel completed and drained
    [FieldOffset(120)] public int References;       // endpoint rows claimed less those given back (a dead holder's stay counted)

    // Line 1: who holds the single reader and writer ends (an OwnerId, 0 when nobody).
    [FieldOffset(128)] public uint ReaderLease;
    [FieldOffset(132)] public uint WriterLease;

    // Line 1, continued: the notifier (what wakes sleepers), chosen when the channel is made.
    [FieldOffset(136)] public NotifierFields Notifier; // first semaphore: readers; second: writers

    // Line 2: processes waiting for Completion sleep here.
    [FieldOffset(256)] public int CompletionSequence;
    [FieldOffset(260)] public int CompletionWaiters;
}

/// <summary>One row of a channel's endpoint table: a process attached to the channel, and what it did.</summary>
[StructLayout(LayoutKind.Explicit, Size = ChannelControl.EndpointSize)]
internal struct ChannelEndpoint
{
    public const int RoleReader = 1;
    public const int RoleWriter = 2;

    /// <summary>The process has readers asleep on the ring's readers' event: its one announcement is in that event's waiter count.</summary>
    public const int WaitingReaders = 4;

    /// <summary>The process has writers asleep on the ring's writers' event (as <see cref="WaitingReaders"/>).</summary>
    public const int WaitingWriters = 8;

    /// <summary>The attached process's <see cref="Segments.OwnerId"/>; 0 for a free row.</summary>
    [FieldOffset(0)] public uint Owner;

    /// <summary>
    /// Which ends the process has used (<see cref="RoleReader"/>, <see cref="RoleWriter"/>), and whether its
    /// waiters are announced on the ring's events (<see cref="WaitingReaders"/>, <see cref="WaitingWriters"/>),
    /// which the survivors take back when it dies.
    /// </summary>
    [FieldOffset(4)] public int Roles;
}

/// <summary>Offsets inside a channel's control block, computed here only.</summary>
internal static class ChannelLayout
{
    /// <summary>The directory name under which a channel's control block is stored.</summary>
    public static string ObjectName(string channelName) => ObjectPrefix + channelName;

    /// <summary>Control blocks carry this prefix in the directory, apart from users' own objects.</summary>
    public const string ObjectPrefix = "shmc.channel.";

    /// <summary>The longest channel name (the directory name adds the prefix).</summary>
    public const int MaxNameLength = SharedName.MaxLength - 13;

    /// <summary>Where entry <paramref name="index"/> of the owned-handle table is, from the control block's start.</summary>
    public static long OwnedHandleOffset(long control, int index) =>
        control + ChannelControl.OwnedHandleOffsetsOffset + ((long)index * sizeof(int));

    /// <summary>Where endpoint row <paramref name="index"/> is, from the control block's start.</summary>
    public static long EndpointOffset(long control, int index) =>
        control + ChannelControl.EndpointsOffset + ((long)index * ChannelControl.EndpointSize);
}
