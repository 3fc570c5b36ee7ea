using System.Runtime.InteropServices;

namespace SharedMemChannels.Synchronization;

/// <summary>
/// The one descriptor of a named synchronization object's control block (<see cref="SharedMutex"/>,
/// <see cref="SharedEvent"/>, <see cref="SharedSemaphore"/>): a named object of the segment's directory,
/// constructed whole by the directory's atomic find-or-construct, so it needs no initialization protocol.
/// </summary>
/// <remarks>
/// <code>
/// line 0   identity: magic, version, kind, flags, maximum count, creation time, generation (a random
///          value of this construction of the block, so that a block freed and made again is another object)
/// line 1   the state word (mutex: holder OwnerId; event: 0 or 1; semaphore: count) and the holder's
///          acquisition count, alone on their line
/// line 2   the event count waiters sleep on (sequence, waiters)
/// </code>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct SyncControl
{
    public const int Size = 384;

    /// <summary>"SHMCSYN1", little-endian.</summary>
    public const ulong MagicValue = 0x314E_5953_434D_4853;

    public const int CurrentVersion = 1;

    public const int KindMutex = 1;
    public const int KindEvent = 2;
    public const int KindSemaphore = 3;

    /// <summary>Event flag: a successful wait resets the event (auto reset).</summary>
    public const int FlagAutoReset = 1;

    public const int StateOffset = 128;
    public const int SequenceOffset = 256;
    public const int WaitersOffset = 260;

    // Line 0.
    [FieldOffset(0)] public ulong Magic;
    [FieldOffset(8)] public int Version;
    [FieldOffset(12)] public int Kind;
    [FieldOffset(16)] public int Flags;
    [FieldOffset(20)] public int Maximum;
    [FieldOffset(24)] public long CreatedUnixMs;

    /// <summary>
    /// Random and never 0, drawn when the block is constructed: a waiter that holds only the block's offset
    /// tells a removed object from the next one made in the same block by it (the magic, version and kind
    /// alike are the same).
    /// </summary>
    [FieldOffset(32)] public ulong Generation;

    // Line 1.
    [FieldOffset(StateOffset)] public int State;
    [FieldOffset(132)] public int Acquisitions;

    // Line 2.
    [FieldOffset(SequenceOffset)] public int Sequence;
    [FieldOffset(WaitersOffset)] public int Waiters;
}

/// <summary>Names of synchronization objects in the directory, computed here only.</summary>
internal static class SyncLayout
{
    /// <summary>Control blocks carry this prefix in the directory, apart from users' own objects and channels.</summary>
    public const string ObjectPrefix = "shmc.sync.";

    /// <summary>The longest name of a synchronization object (the directory name adds the prefix).</summary>
    public const int MaxNameLength = SharedName.MaxLength - 10;

    public static string ObjectName(string name) => ObjectPrefix + name;

    public static string KindName(int kind) => kind switch
    {
        SyncControl.KindMutex => "mutex",
        SyncControl.KindEvent => "event",
        SyncControl.KindSemaphore => "semaphore",
        _ => $"unknown ({kind})",
    };
}
