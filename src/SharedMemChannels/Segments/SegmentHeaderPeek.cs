using System.Buffers.Binary;
using System.Text;
using SharedMemChannels.Common;
using SharedMemChannels.Platform;

namespace SharedMemChannels.Segments;

/// <summary>What the first bytes of a shared-memory object say it is.</summary>
internal enum HeaderKind
{
    /// <summary>Smaller than a header, or a header of zeros: a creator died before writing anything.</summary>
    Empty,

    /// <summary>Not written by this library.</summary>
    Foreign,

    /// <summary>This library's magic, another layout version.</summary>
    OtherVersion,

    /// <summary>Being initialized (or left so by a creator that died).</summary>
    Initializing,

    /// <summary>Initialized.</summary>
    Ready,
}

/// <summary>
/// Reads a segment header from a copy of its bytes: safe code, no trust in what it reads. Every field
/// is read at its offset named in <see cref="SegmentHeader"/>, the one description of the layout.
/// </summary>
internal static class SegmentHeaderPeek
{
    public const int MinimumLength = SegmentHeader.Size;

    /// <summary>Says what the header bytes are.</summary>
    public static HeaderKind Classify(ReadOnlySpan<byte> header)
    {
        if (header.Length < MinimumLength || !header[..MinimumLength].ContainsAnyExcept((byte)0))
        {
            return HeaderKind.Empty;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.MagicOffset..]) != SegmentHeader.MagicValue)
        {
            return HeaderKind.Foreign;
        }

        // Until "ready" the creator may not have written the version yet: only a finished header is
        // judged by it (the state word is in the stable prefix, so every version agrees on it).
        if (BinaryPrimitives.ReadInt32LittleEndian(header[SegmentHeader.StateOffset..]) != SegmentHeader.StateReady)
        {
            return HeaderKind.Initializing;
        }

        return Version(header) == SegmentHeader.CurrentVersion ? HeaderKind.Ready : HeaderKind.OtherVersion;
    }

    /// <summary>The layout version written in a header of this library.</summary>
    public static uint Version(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.LayoutVersionOffset..]);

    /// <summary>The creator's identity as far as the header holds it (zeros where it is not written yet).</summary>
    public static ProcessIdentity Creator(ReadOnlySpan<byte> header) => new(
        BinaryPrimitives.ReadInt32LittleEndian(header[SegmentHeader.CreatorPidOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.CreatorStartTimeOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.CreatorPidNamespaceOffset..]));

    /// <summary>Every field of the header, read from the copy (no field is checked here).</summary>
    public static SegmentHeader Read(ReadOnlySpan<byte> header)
    {
        header = header[..MinimumLength];
        return new SegmentHeader
        {
            Magic = BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.MagicOffset..]),
            LayoutVersion = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.LayoutVersionOffset..]),
            HeaderSize = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.HeaderSizeOffset..]),
            State = BinaryPrimitives.ReadInt32LittleEndian(header[SegmentHeader.StateOffset..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.FlagsOffset..]),
            MaxCapacity = BinaryPrimitives.ReadInt64LittleEndian(header[SegmentHeader.MaxCapacityOffset..]),
            InitialCapacity = BinaryPrimitives.ReadInt64LittleEndian(header[SegmentHeader.InitialCapacityOffset..]),
            CreatorPid = BinaryPrimitives.ReadInt32LittleEndian(header[SegmentHeader.CreatorPidOffset..]),
            Mode = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.ModeOffset..]),
            CreatorStartTime = BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.CreatorStartTimeOffset..]),
            CreatorPidNamespace = BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.CreatorPidNamespaceOffset..]),
            CreatedUnixMs = BinaryPrimitives.ReadInt64LittleEndian(header[SegmentHeader.CreatedUnixMsOffset..]),
            ProcessTableOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.ProcessTableOffsetOffset..]),
            ProcessTableSlots = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.ProcessTableSlotsOffset..]),
            HeapControlOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.HeapControlOffsetOffset..]),
            HeapStart = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.HeapStartOffset..]),
            NameLength = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.NameLengthOffset..]),
            Backend = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.BackendOffset..]),
            Checksum = BinaryPrimitives.ReadUInt64LittleEndian(header[SegmentHeader.ChecksumOffset..]),
            Capacity = BinaryPrimitives.ReadInt64LittleEndian(header[SegmentHeader.CapacityOffset..]),
            ChannelCount = BinaryPrimitives.ReadInt32LittleEndian(header[SegmentHeader.ChannelCountOffset..]),
        };
    }

    /// <summary>The name stored in the header, or null when the bytes are not a header of this library.</summary>
    public static string? ReadName(ReadOnlySpan<byte> header)
    {
        if (Classify(header) is not (HeaderKind.Ready or HeaderKind.Initializing))
        {
            return null;
        }

        uint nameLength = BinaryPrimitives.ReadUInt32LittleEndian(header[SegmentHeader.NameLengthOffset..]);
        if (nameLength == 0 || nameLength > SharedName.MaxLength)
        {
            return null;
        }

        return Encoding.UTF8.GetString(header.Slice(SegmentHeader.NameOffset, (int)nameLength));
    }

    /// <summary>
    /// Checks a ready header against the object it came from, and throws
    /// <see cref="InvalidSegmentException"/> for anything that does not add up.
    /// </summary>
    /// <param name="header">A copy of the header bytes.</param>
    /// <param name="name">The name the caller opened.</param>
    /// <param name="objectSize">The backing object's size as the kernel reports it.</param>
    /// <param name="backend">The facility the object was opened through.</param>
    public static SegmentHeader Validate(ReadOnlySpan<byte> header, string name, long objectSize, SharedMemoryBackend backend)
    {
        SegmentHeader h = ValidateHeader(header, name, backend);
        CheckObjectSize(h, name, objectSize);
        return h;
    }

    /// <summary>
    /// The checks of <see cref="Validate"/> that need only the header: everything but the backing
    /// object's size, which inspection judges separately so that it can still show a truncated segment.
    /// </summary>
    public static SegmentHeader ValidateHeader(ReadOnlySpan<byte> header, string name, SharedMemoryBackend backend)
    {
        SegmentHeader h = Read(header);
        if (h.HeaderSize != SegmentHeader.Size)
        {
            throw new InvalidSegmentException(name, $"its header claims {h.HeaderSize} bytes; layout version {SegmentHeader.CurrentVersion} has {SegmentHeader.Size}.");
        }

        if (h.Checksum != ComputeChecksum(header))
        {
            throw new InvalidSegmentException(name, "its header is damaged (checksum mismatch).");
        }

        if (h.NameLength == 0 || h.NameLength > SharedName.MaxLength)
        {
            throw new InvalidSegmentException(name, $"its header holds a name of {h.NameLength} bytes.");
        }

        string stored = Encoding.UTF8.GetString(header.Slice(SegmentHeader.NameOffset, (int)h.NameLength));
        if (stored != name)
        {
            throw backend == SharedMemoryBackend.SystemV
                ? new IOException($"System V key collision: the key of segment '{name}' is held by segment '{stored}'. Choose another name or use the POSIX backend.")
                : new InvalidSegmentException(name, $"its header names another segment, '{stored}'.");
        }

        if (h.Backend != (uint)backend)
        {
            throw new InvalidSegmentException(name, $"its header says backend {h.Backend}, but it was opened as {backend}.");
        }

        if (h.ProcessTableOffset != SegmentLayout.ProcessTableOffset || h.ProcessTableSlots != SegmentLayout.ProcessTableSlots ||
            h.HeapControlOffset != SegmentLayout.HeapControlOffset || h.HeapStart != SegmentLayout.HeapStart)
        {
            throw new InvalidSegmentException(name, $"its header places the process table or heap where layout version {SegmentHeader.CurrentVersion} does not.");
        }

        long page = Environment.SystemPageSize;
        if (h.MaxCapacity < SegmentOptions.MinCapacity || h.MaxCapacity > SegmentOptions.MaxSupportedCapacity || h.MaxCapacity % page != 0)
        {
            throw new InvalidSegmentException(name, $"its header gives an impossible maximum capacity ({h.MaxCapacity} bytes).");
        }

        long capacity = h.Capacity;
        if (capacity < SegmentOptions.MinCapacity || capacity > h.MaxCapacity || capacity % page != 0)
        {
            throw new InvalidSegmentException(name, $"its header gives an impossible capacity ({capacity} bytes, maximum {h.MaxCapacity}).");
        }

        return h;
    }

    /// <summary>
    /// Checks the backing object's size against a validated header: smaller than the capacity is a
    /// truncated segment, larger than the maximum one resized by something else.
    /// </summary>
    public static void CheckObjectSize(in SegmentHeader h, string name, long objectSize)
    {
        long capacity = h.Capacity;
        if (objectSize < capacity)
        {
            throw new InvalidSegmentException(name, $"it is truncated: the header says {capacity} bytes, the object has {objectSize}.");
        }

        if (objectSize > h.MaxCapacity)
        {
            throw new InvalidSegmentException(name, $"the object has {objectSize} bytes, more than the {h.MaxCapacity} its header allows: it was resized by something other than this library.");
        }
    }

    /// <summary>
    /// FNV-1a over every byte the creator writes once: the whole header page except the state word,
    /// the checksum itself and the mutable words (from <see cref="SegmentHeader.MutableOffset"/> on).
    /// </summary>
    public static ulong ComputeChecksum(ReadOnlySpan<byte> header)
    {
        const int stateEnd = SegmentHeader.StateOffset + sizeof(int);
        const int checksumEnd = SegmentHeader.ChecksumOffset + sizeof(ulong);
        ulong hash = Fnv1a.Hash64(header[..SegmentHeader.StateOffset]);
        hash = Fnv1a.Hash64(header[stateEnd..SegmentHeader.ChecksumOffset], hash);
        return Fnv1a.Hash64(header[checksumEnd..SegmentHeader.MutableOffset], hash);
    }
}
