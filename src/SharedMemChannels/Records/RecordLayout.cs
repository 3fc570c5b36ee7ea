using System.Runtime.InteropServices;

namespace SharedMemChannels.Records;

/// <summary>
/// The one descriptor of a record block: the heap block a <see cref="ShmRecord"/> lives in starts with
/// this header, then the payload. The header names the channel the record belongs to and carries the
/// record's ownership word, which every holder checks before it touches the payload.
/// </summary>
/// <remarks>
/// <code>
/// 0   magic "REC1"
/// 4   payload length (1..the channel's MaxRecordSize)
/// 8   channel id (the channel's random id, ChannelControl.ChannelId)
/// 16  ownership word: state in the low 8 bits, ticket in the high 56
/// 24  reserved (0)
/// 32  payload (16-byte aligned, as every heap payload)
/// </code>
/// The ownership word moves writer → queued → reader → freed (or writer → freed when a writer abandons
/// a record it never wrote) by compare-and-swap from the exact word the holder was given, so a stale
/// copy of a <see cref="ShmRecord"/> (one handed over, disposed, or a copy of one) can never act again.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct RecordHeader
{
    public const int Size = 32;

    /// <summary>"REC1", little-endian.</summary>
    public const uint MagicValue = 0x3143_4552;

    /// <summary>The heap block tag of record blocks (the heap walk at channel destruction looks for it).</summary>
    public const uint BlockTag = 0x5245_4331; // "REC1"

    public const ulong StateMask = 0xFF;
    public const int TicketShift = 8;

    /// <summary>Allocated by a writer process, not written yet (block owned by the writer).</summary>
    public const ulong StateWriter = 1;

    /// <summary>In the channel (block owned by the segment).</summary>
    public const ulong StateQueued = 2;

    /// <summary>Read by a reader process (block owned by the reader).</summary>
    public const ulong StateReader = 3;

    /// <summary>Being freed.</summary>
    public const ulong StateFreed = 4;

    [FieldOffset(0)] public uint Magic;
    [FieldOffset(4)] public int Length;
    [FieldOffset(8)] public ulong ChannelId;
    [FieldOffset(16)] public ulong Ownership;
    [FieldOffset(24)] public ulong Reserved;

    public static ulong Word(ulong ticket, ulong state) => (ticket << TicketShift) | state;

    public static ulong TicketOf(ulong word) => word >> TicketShift;

    public static ulong StateOf(ulong word) => word & StateMask;
}

/// <summary>
/// A record channel's ring element: the record block's handle, its payload length and the ticket of
/// the ownership word it was queued with. The handle (offset <see cref="HandleOffset"/>) is the one
/// owned handle of the element, as recorded in the channel's owned-handle table.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RecordSlot
{
    public const int HandleOffset = 0;

    public ShmHandle Handle;
    public ulong Ticket;
    public int Length;
    public int Reserved;
}
