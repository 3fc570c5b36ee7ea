using SharedMemChannels.Common;
using System.Runtime.InteropServices;
using System.Text;
using SharedMemChannels.Heap;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Objects;

/// <summary>
/// The segment's directory of named objects: an open-addressing hash table in a heap block, found
/// through the heap control block, guarded by its own <see cref="RobustLock"/> (taken before the heap
/// lock, never after). Each named object is one heap block holding an <see cref="ObjectHeader"/>, the
/// name, the type's name and then the value, so that creating or destroying one touches one block.
/// </summary>
/// <remarks>
/// Crash safety: every change is announced in the directory's intent record and made visible by one
/// store (an entry's state, the table handle). Whoever takes the lock over from a dead holder finishes
/// or undoes the announced change (<see cref="RecoverLocked"/>); blocks still owned by the dead process
/// are either adopted by the segment (the change was published) or left to be reclaimed (it was not).
/// </remarks>
internal sealed class ObjectDirectory : ILockRecovery
{
    /// <summary>The block tag of object blocks (named and anonymous).</summary>
    public const uint ObjectBlockTag = DirectoryLayout.ObjectBlockTag;

    private const uint TableMagic = DirectoryLayout.TableMagic;
    private const uint ObjectMagic = DirectoryLayout.ObjectMagic;
    private const int InitialCapacity = DirectoryLayout.InitialCapacity;

    private const int EntryEmpty = DirectoryEntry.Empty;
    private const int EntryUsed = DirectoryEntry.Used;
    private const int EntryTombstone = DirectoryEntry.Tombstone;

    private const int IntentNone = DirectoryControl.IntentNone;
    private const int IntentInsert = DirectoryControl.IntentInsert;
    private const int IntentDestroy = DirectoryControl.IntentDestroy;
    private const int IntentRehash = DirectoryControl.IntentRehash;

    private readonly SegmentAttachment _segment;
    private readonly SegmentMemory _m;
    private readonly SharedHeap _heap;

    public ObjectDirectory(SegmentAttachment segment)
    {
        _segment = segment;
        _m = segment.Memory;
        _heap = segment.Heap;
    }

    private ref DirectoryControl Control => ref _m.Ref<DirectoryControl>(SegmentLayout.DirectoryControlOffset);

    /// <summary>
    /// Finds the object <paramref name="name"/> as a <typeparamref name="T"/>, or (when
    /// <paramref name="mayCreate"/>) creates it holding <paramref name="value"/>, atomically across processes.
    /// </summary>
    public ObjectRef FindOrConstruct<T>(string name, in T value, bool mayFind, bool mayCreate, out bool created)
        where T : unmanaged
    {
        using (HoldLock())
        {
            return FindOrConstructLocked(name, value, mayFind, mayCreate, out created);
        }
    }

    /// <summary>
    /// Takes the directory's lock, for a layer above that must find (or destroy) an object and act on it
    /// as one step: nothing can destroy or make an object while it is held. Use the <c>...Locked</c>
    /// methods under it (the lock is not reentrant).
    /// </summary>
    internal Scope Lock() => HoldLock();

    /// <summary>
    /// Finds the object <paramref name="name"/> as a <typeparamref name="T"/>, with the lock held by the
    /// caller: false when there is none, or when what is there is not a <typeparamref name="T"/>.
    /// </summary>
    internal bool TryFindLocked<T>(string name, out ObjectRef found)
        where T : unmanaged
    {
        try
        {
            found = FindOrConstructLocked(name, default(T), mayFind: true, mayCreate: false, out _);
        }
        catch (InvalidCastException)
        {
            found = default;
            return false;
        }

        return !found.IsNull;
    }

    /// <summary>As <see cref="FindOrConstruct{T}"/>, with the lock held by the caller (<see cref="Lock"/>).</summary>
    internal ObjectRef FindOrConstructLocked<T>(string name, in T value, bool mayFind, bool mayCreate, out bool created)
        where T : unmanaged
    {
        TypeLayoutInfo type = TypeLayout<T>.Info;
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        uint hash = Hash(nameBytes);
        created = false;
        {
            // A find alone never creates the table: looking must not change the segment.
            long table = mayCreate ? EnsureTable() : TableOrZero();
            if (table == 0)
            {
                return default;
            }

            int slot = Lookup(table, nameBytes, hash, out int freeSlot);
            if (slot >= 0)
            {
                if (!mayFind)
                {
                    ThrowHelper.ThrowInvalidOperation($"Segment '{_segment.Name}' already has a named object '{name}'.");
                }

                return RefFromEntry(table, slot, name, type);
            }

            if (!mayCreate)
            {
                return default;
            }

            if (NeedsRehash(table))
            {
                table = Rehash(table);
                Lookup(table, nameBytes, hash, out freeSlot);
            }

            ShmHandle block = AllocateObject(nameBytes, type, in value, ShmOwnership.Process, out long valueOffset);
            ref DirectoryControl control = ref Control;
            control.IntentHandle = block.Value;
            Volatile.Write(ref control.IntentOp, IntentInsert);

            ref DirectoryEntry entry = ref Entry(table, freeSlot);
            bool wasTombstone = entry.State == EntryTombstone;
            entry.NameHash = hash;
            entry.Handle = block.Value;
            entry.Fingerprint = type.Fingerprint;
            entry.TypeSize = (uint)type.Size;
            entry.NameLength = (uint)nameBytes.Length;
            Volatile.Write(ref entry.State, EntryUsed); // published
            ref DirectoryTableHeader header = ref Header(table);
            header.Count++;
            if (wasTombstone)
            {
                header.Tombstones--;
            }

            _heap.SetOwnership(block, ShmOwnership.Segment);
            Volatile.Write(ref control.IntentOp, IntentNone);
            created = true;
            return new ObjectRef(block, valueOffset);
        }
    }

    /// <summary>Removes the object <paramref name="name"/> and frees its block; false when there is none.</summary>
    public bool Destroy(string name) => Destroy(name, ShmHandle.Null);

    /// <summary>
    /// Removes the object <paramref name="name"/> and frees its block, but only if the name still refers
    /// to <paramref name="expected"/> (any block when it is null): a name removed and made again by
    /// someone else in between is left alone.
    /// </summary>
    public bool Destroy(string name, ShmHandle expected)
    {
        using (HoldLock())
        {
            return DestroyLocked(name, expected);
        }
    }

    /// <summary>As <see cref="Destroy(string, ShmHandle)"/>, with the lock held by the caller (<see cref="Lock"/>).</summary>
    internal bool DestroyLocked(string name, ShmHandle expected)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        {
            long table = TableOrZero();
            if (table == 0)
            {
                return false;
            }

            int slot = Lookup(table, nameBytes, Hash(nameBytes), out _);
            if (slot < 0)
            {
                return false;
            }

            ref DirectoryEntry entry = ref Entry(table, slot);
            ShmHandle block = ShmHandle.FromValue(entry.Handle);
            if (!expected.IsNull && block != expected)
            {
                return false;
            }

            ref DirectoryControl control = ref Control;
            control.IntentHandle = block.Value;
            Volatile.Write(ref control.IntentOp, IntentDestroy);
            Tombstone(table, slot);
            _heap.Free(block);
            Volatile.Write(ref control.IntentOp, IntentNone);
            return true;
        }
    }

    /// <summary>Runs <paramref name="action"/> while holding the directory lock (for crash tests).</summary>
    internal void HoldLockForTest(Action action)
    {
        using (HoldLock())
        {
            action();
        }
    }

    /// <summary>Lists the named objects (under the lock).</summary>
    public List<NamedObjectInfo> List()
    {
        using (HoldLock())
        {
            return ListCore(_m, _heap, TableOrZero());
        }
    }

    /// <summary>Lists the named objects of a segment mapped read-only, without any lock (for inspection).</summary>
    public static List<NamedObjectInfo> List(SegmentMemory memory)
    {
        var heap = SharedHeap.ForInspection(memory);
        ulong tableHandle = Volatile.Read(ref memory.Ref<DirectoryControl>(SegmentLayout.DirectoryControlOffset).Table);
        long table = tableHandle == 0 ? 0 : heap.GetPayloadOffset(ShmHandle.FromValue(tableHandle), out _, out _);
        return ListCore(memory, heap, table);
    }

    /// <summary>Allocates an object block: header, name, type name, then the value.</summary>
    public ShmHandle AllocateObject<T>(ReadOnlySpan<byte> nameBytes, TypeLayoutInfo type, in T value, ShmOwnership ownership, out long valueOffset)
        where T : unmanaged
    {
        byte[] typeName = TruncatedTypeName(type.DisplayName);
        int valueAt = DirectoryLayout.ValueOffsetFor(nameBytes.Length, typeName.Length);
        int total = valueAt + Math.Max(type.Size, 1);
        ShmHandle block = _heap.TryAllocate(total, ownership, ObjectBlockTag, out ShmHandle handle)
            ? handle
            : throw new OutOfSharedMemoryException($"Out of shared memory: {total} bytes for a {type.DisplayName} object in segment '{_segment.Name}'.{_segment.DescribeMemoryLimit()}");
        long payload = _heap.GetPayloadOffset(block, out _, out _);
        Span<byte> bytes = _m.Span(payload, total);
        bytes.Clear();
        ref ObjectHeader header = ref _m.Ref<ObjectHeader>(payload);
        header.Magic = ObjectMagic;
        header.NameLength = (uint)nameBytes.Length;
        header.TypeNameLength = (uint)typeName.Length;
        header.TypeSize = (uint)type.Size;
        header.Fingerprint = type.Fingerprint;
        header.ValueOffset = (uint)valueAt;
        nameBytes.CopyTo(_m.Span(DirectoryLayout.NameOffset(payload), nameBytes.Length));
        typeName.CopyTo(_m.Span(DirectoryLayout.TypeNameOffset(payload, (uint)nameBytes.Length), typeName.Length));
        valueOffset = payload + valueAt;
        _m.Ref<T>(valueOffset) = value;
        return block;
    }

    /// <summary>
    /// Reads the object header of block <paramref name="block"/> and checks it against
    /// <paramref name="type"/>: the offset of the value, or an exception naming both types.
    /// </summary>
    public static long ValueOffsetOf(SegmentMemory m, SharedHeap heap, ShmHandle block, TypeLayoutInfo type, string what)
    {
        long payload = heap.GetPayloadOffset(block, out int length, out uint tag);
        if (tag != ObjectBlockTag)
        {
            ThrowHelper.ThrowInvalidCast($"{what} is a plain block, not an object constructed as a type.");
        }

        ObjectHeader header = ReadObjectHeader(m, payload, length);
        if (header.Fingerprint != type.Fingerprint || header.TypeSize != type.Size)
        {
            string stored = Encoding.UTF8.GetString(m.Span(DirectoryLayout.TypeNameOffset(payload, header.NameLength), (int)header.TypeNameLength));
            ThrowHelper.ThrowInvalidCast(
                $"{what} was constructed as {stored} ({header.TypeSize} bytes, layout {header.Fingerprint:x16}); it cannot be used as {type.DisplayName} ({type.Size} bytes, layout {type.Fingerprint:x16}).");
        }

        return payload + header.ValueOffset;
    }

    private static ObjectHeader ReadObjectHeader(SegmentMemory m, long payload, int length)
    {
        if (length < ObjectHeader.Size)
        {
            ThrowHelper.ThrowDamaged(m.Name, $"the object block at {payload} is too small ({length} bytes).");
        }

        ObjectHeader header = m.Ref<ObjectHeader>(payload);
        if (header.Magic != ObjectMagic || header.NameLength > SharedName.MaxLength || header.TypeNameLength > DirectoryLayout.MaxTypeNameBytes ||
            header.ValueOffset % DirectoryLayout.ValueAlignment != 0 || header.ValueOffset < ObjectHeader.Size + header.NameLength + header.TypeNameLength ||
            (long)header.ValueOffset + Math.Max(header.TypeSize, 1) > length)
        {
            ThrowHelper.ThrowDamaged(m.Name, $"the object block at {payload} has a damaged header.");
        }

        return header;
    }

    private ObjectRef RefFromEntry(long table, int slot, string name, TypeLayoutInfo type)
    {
        ShmHandle block = ShmHandle.FromValue(Entry(table, slot).Handle);
        long valueOffset = ValueOffsetOf(_m, _heap, block, type, $"Named object '{name}'");
        return new ObjectRef(block, valueOffset);
    }

    private static List<NamedObjectInfo> ListCore(SegmentMemory m, SharedHeap heap, long table)
    {
        var result = new List<NamedObjectInfo>();
        if (table == 0)
        {
            return result;
        }

        DirectoryTableHeader header = ValidateTable(m, heap, table);
        for (int i = 0; i < header.Capacity; i++)
        {
            DirectoryEntry entry = m.Ref<DirectoryEntry>(DirectoryLayout.EntryOffset(table, i));
            if (entry.State != EntryUsed)
            {
                continue;
            }

            ShmHandle block = ShmHandle.FromValue(entry.Handle);
            long payload = heap.GetPayloadOffset(block, out int length, out _);
            ObjectHeader objectHeader = ReadObjectHeader(m, payload, length);
            string name = Encoding.UTF8.GetString(m.Span(DirectoryLayout.NameOffset(payload), (int)objectHeader.NameLength));
            string typeName = Encoding.UTF8.GetString(m.Span(DirectoryLayout.TypeNameOffset(payload, objectHeader.NameLength), (int)objectHeader.TypeNameLength));
            result.Add(new NamedObjectInfo(name, typeName, (int)objectHeader.TypeSize, objectHeader.Fingerprint, block));
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return result;
    }

    /// <summary>The slot holding <paramref name="name"/>, or -1; <paramref name="freeSlot"/> is where it would go.</summary>
    private int Lookup(long table, ReadOnlySpan<byte> name, uint hash, out int freeSlot)
    {
        DirectoryTableHeader header = ValidateTable(_m, _heap, table);
        int mask = (int)header.Capacity - 1;
        freeSlot = -1;
        for (int probe = 0, i = (int)hash & mask; probe < header.Capacity; probe++, i = (i + 1) & mask)
        {
            ref DirectoryEntry entry = ref Entry(table, i);
            int state = Volatile.Read(ref entry.State);
            if (state == EntryEmpty)
            {
                if (freeSlot < 0)
                {
                    freeSlot = i;
                }

                return -1;
            }

            if (state == EntryTombstone)
            {
                if (freeSlot < 0)
                {
                    freeSlot = i;
                }

                continue;
            }

            if (entry.NameHash == hash && entry.NameLength == name.Length && NameMatches(entry, name))
            {
                return i;
            }
        }

        return -1;
    }

    private bool NameMatches(in DirectoryEntry entry, ReadOnlySpan<byte> name)
    {
        long payload = _heap.GetPayloadOffset(ShmHandle.FromValue(entry.Handle), out int length, out _);
        ObjectHeader header = ReadObjectHeader(_m, payload, length);
        return header.NameLength == name.Length && _m.Span(DirectoryLayout.NameOffset(payload), name.Length).SequenceEqual(name);
    }

    private bool NeedsRehash(long table)
    {
        DirectoryTableHeader header = Header(table);
        return (header.Count + header.Tombstones + 1) * 2 > header.Capacity;
    }

    /// <summary>Builds a new table (larger if it is more than a quarter full of live entries) and swaps it in.</summary>
    private long Rehash(long oldTable)
    {
        DirectoryTableHeader old = Header(oldTable);
        uint capacity = old.Capacity;
        while ((old.Count + 1) * 4 > capacity)
        {
            capacity *= 2;
        }

        ShmHandle oldHandle = ShmHandle.FromValue(Control.Table);
        ShmHandle newHandle = AllocateTable(capacity, ShmOwnership.Process);
        long newTable = _heap.GetPayloadOffset(newHandle, out _, out _);
        uint mask = capacity - 1;
        uint count = 0;
        for (int i = 0; i < old.Capacity; i++)
        {
            DirectoryEntry entry = Entry(oldTable, i);
            if (entry.State != EntryUsed)
            {
                continue;
            }

            uint at = entry.NameHash & mask;
            while (Entry(newTable, (int)at).State != EntryEmpty)
            {
                at = (at + 1) & mask;
            }

            Entry(newTable, (int)at) = entry;
            count++;
        }

        Header(newTable).Count = count;

        // Announce, give the new table to the segment, publish it with one store, then free the old one.
        ref DirectoryControl control = ref Control;
        control.IntentHandle = newHandle.Value;
        control.IntentHandle2 = oldHandle.Value;
        Volatile.Write(ref control.IntentOp, IntentRehash);
        _heap.SetOwnership(newHandle, ShmOwnership.Segment);
        Volatile.Write(ref control.Table, newHandle.Value);
        _heap.Free(oldHandle);
        Volatile.Write(ref control.IntentOp, IntentNone);
        return newTable;
    }

    private long EnsureTable()
    {
        long table = TableOrZero();
        if (table != 0)
        {
            return table;
        }

        // The same announce-publish steps as a rehash, with no old table to free.
        ShmHandle handle = AllocateTable(InitialCapacity, ShmOwnership.Process);
        ref DirectoryControl control = ref Control;
        control.IntentHandle = handle.Value;
        control.IntentHandle2 = 0;
        Volatile.Write(ref control.IntentOp, IntentRehash);
        _heap.SetOwnership(handle, ShmOwnership.Segment);
        Volatile.Write(ref control.Table, handle.Value);
        Volatile.Write(ref control.IntentOp, IntentNone);
        return _heap.GetPayloadOffset(handle, out _, out _);
    }

    private ShmHandle AllocateTable(uint capacity, ShmOwnership ownership)
    {
        int size = (int)DirectoryLayout.TableSize(capacity);
        if (!_heap.TryAllocate(size, ownership, 0, out ShmHandle handle))
        {
            ThrowHelper.ThrowOutOfMemory($"Out of shared memory: {size} bytes for the named-object directory of segment '{_segment.Name}'.{_segment.DescribeMemoryLimit()}");
        }

        long payload = _heap.GetPayloadOffset(handle, out _, out _);
        _m.Span(payload, size).Clear();
        ref DirectoryTableHeader header = ref Header(payload);
        header.Magic = TableMagic;
        header.Capacity = capacity;
        return handle;
    }

    private long TableOrZero()
    {
        ulong handle = Volatile.Read(ref Control.Table);
        return handle == 0 ? 0 : _heap.GetPayloadOffset(ShmHandle.FromValue(handle), out _, out _);
    }

    private static DirectoryTableHeader ValidateTable(SegmentMemory m, SharedHeap heap, long table)
    {
        _ = heap;
        DirectoryTableHeader header = ValidateTableShape(m, table);
        if (header.Count > header.Capacity || header.Tombstones > header.Capacity)
        {
            ThrowHelper.ThrowDamaged(m.Name, $"its named-object directory is damaged: {header.Count} entries and {header.Tombstones} tombstones in {header.Capacity} slots.");
        }

        return header;
    }

    /// <summary>Checks what every lookup relies on: the magic, and a power-of-two capacity inside the block.</summary>
    private static DirectoryTableHeader ValidateTableShape(SegmentMemory m, long table)
    {
        DirectoryTableHeader header = m.Ref<DirectoryTableHeader>(table);
        if (header.Magic != TableMagic || header.Capacity < InitialCapacity || (header.Capacity & (header.Capacity - 1)) != 0 ||
            header.Capacity > DirectoryLayout.MaxCapacity)
        {
            ThrowHelper.ThrowDamaged(m.Name, "its named-object directory is damaged.");
        }

        // The entries must lie inside the mapping; the accessor checks the whole range.
        m.Span(table, (int)DirectoryLayout.TableSize(header.Capacity));
        return header;
    }

    private ref DirectoryTableHeader Header(long table) => ref _m.Ref<DirectoryTableHeader>(table);

    private ref DirectoryEntry Entry(long table, int index) => ref _m.Ref<DirectoryEntry>(DirectoryLayout.EntryOffset(table, index));

    /// <summary>Takes the directory lock, finishing a dead holder's change first, until the scope is disposed.</summary>
    private Scope HoldLock() => RobustLock.Enter(ref Control.Lock, _segment.Owner, _segment.Processes, this);

    void ILockRecovery.RecoverLocked() => RecoverLocked();

    /// <summary>Finishes or undoes the change a dead lock holder announced.</summary>
    private void RecoverLocked()
    {
        ref DirectoryControl control = ref Control;
        int op = Volatile.Read(ref control.IntentOp);
        var handle = ShmHandle.FromValue(control.IntentHandle);
        switch (op)
        {
            case IntentInsert:
            {
                long table = TableOrZero();
                int slot = table == 0 ? -1 : FindEntryByHandle(table, handle.Value);
                if (slot >= 0 && IsAllocated(handle))
                {
                    _heap.SetOwnership(handle, ShmOwnership.Segment); // published: keep it
                }
                else
                {
                    if (slot >= 0)
                    {
                        // Published, but the dead process's blocks were reclaimed first: undo the entry.
                        Tombstone(table, slot);
                    }

                    FreeIfAllocated(handle);
                }

                break;
            }

            case IntentDestroy:
            {
                long table = TableOrZero();
                int slot = table == 0 ? -1 : FindEntryByHandle(table, handle.Value);
                if (slot >= 0)
                {
                    Tombstone(table, slot);
                }

                FreeIfAllocated(handle);
                break;
            }

            case IntentRehash:
            {
                var oldHandle = ShmHandle.FromValue(control.IntentHandle2);
                if (Volatile.Read(ref control.Table) == handle.Value)
                {
                    _heap.SetOwnership(handle, ShmOwnership.Segment);
                    FreeIfAllocated(oldHandle);
                }
                else
                {
                    FreeIfAllocated(handle);
                }

                break;
            }
        }

        Volatile.Write(ref control.IntentOp, IntentNone);

        // The counts are updated after the single store that publishes a change, so a dead holder may
        // have left them one off: count again from the entries themselves.
        long current = TableOrZero();
        if (current != 0)
        {
            Recount(current);
        }
    }

    private void Recount(long table)
    {
        DirectoryTableHeader header = ValidateTableShape(_m, table);
        uint used = 0;
        uint tombstones = 0;
        for (int i = 0; i < header.Capacity; i++)
        {
            int state = Entry(table, i).State;
            used += state == EntryUsed ? 1u : 0u;
            tombstones += state == EntryTombstone ? 1u : 0u;
        }

        ref DirectoryTableHeader live = ref Header(table);
        live.Count = used;
        live.Tombstones = tombstones;
    }

    /// <summary>Removes an entry from lookups with one store, then fixes the counts.</summary>
    private void Tombstone(long table, int slot)
    {
        Volatile.Write(ref Entry(table, slot).State, EntryTombstone);
        ref DirectoryTableHeader header = ref Header(table);
        header.Count--;
        header.Tombstones++;
    }

    private int FindEntryByHandle(long table, ulong handle)
    {
        DirectoryTableHeader header = ValidateTable(_m, _heap, table);
        for (int i = 0; i < header.Capacity; i++)
        {
            ref DirectoryEntry entry = ref Entry(table, i);
            if (entry.State == EntryUsed && entry.Handle == handle)
            {
                return i;
            }
        }

        return -1;
    }

    private bool IsAllocated(ShmHandle handle)
    {
        try
        {
            _heap.GetPayloadOffset(handle, out _, out _);
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    private void FreeIfAllocated(ShmHandle handle)
    {
        if (!handle.IsNull && IsAllocated(handle))
        {
            _heap.Free(handle);
        }
    }

    private static uint Hash(ReadOnlySpan<byte> name) => Fnv1a.Hash32(name);

    private static byte[] TruncatedTypeName(string displayName)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(displayName);
        if (bytes.Length <= DirectoryLayout.MaxTypeNameBytes)
        {
            return bytes;
        }

        // Cut on a character boundary, never inside a UTF-8 sequence.
        int cut = DirectoryLayout.MaxTypeNameBytes;
        while (cut > 0 && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--;
        }

        return bytes[..cut];
    }
}
