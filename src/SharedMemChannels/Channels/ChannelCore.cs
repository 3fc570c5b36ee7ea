using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Common;
using SharedMemChannels.Heap;
using SharedMemChannels.Objects;
using SharedMemChannels.Rings;
using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels.Channels;

/// <summary>
/// One process's hold on a channel: its control block in the segment, its ring, and what this process
/// knows locally (its role leases, the exception it completed the channel with, its Completion task).
/// <see cref="SharedChannel{T}"/>'s reader and writer are thin views of this.
/// </summary>
internal sealed partial class ChannelCore<T>
    where T : unmanaged
{
    private static readonly TimeSpan s_initTimeout = TimeSpan.FromSeconds(10);

    private readonly SegmentAttachment _segment;
    private readonly long _control;
    private readonly ShmHandle _controlBlock;
    private readonly Action<T>? _itemDropped;
    private readonly ElementOwnership<T>? _ownership; // null for elements that own no heap storage
    private readonly object _completionLock = new();
    private IRing<T> _ring = null!;
    private RingHeader _header = null!; // _ring.Header, without the interface call on every operation
    private SpscRing<T>? _spsc;         // _ring when it is the SPSC ring: the hot path calls it directly (no interface dispatch)
    private EventCount _completionEvent = null!;
    private TaskCompletionSource? _completion;
    private Exception? _localError; // the exact object this process completed the channel with
    private int _roles;             // ChannelEndpoint roles this process has taken
    private int _endpoint = -1;     // our row in the endpoint table
    private int _detached;
    private object? _notifierHold;  // this instance's hold on the channel's semaphores (none for the futex)
    private PriorityOrder<T>? _order; // a prioritized channel's comparer in this process

    private ChannelCore(SegmentAttachment segment, string name, ShmHandle controlBlock, long control, SharedChannelOptions options, Action<T>? itemDropped, ElementOwnership<T>? ownership)
    {
        _segment = segment;
        Name = name;
        _controlBlock = controlBlock;
        _control = control;
        Options = options;
        _itemDropped = itemDropped;
        _ownership = ownership;
    }

    /// <summary>What the channel does with its elements' heap storage; null when they own none.</summary>
    public ElementOwnership<T>? Ownership => _ownership;

    /// <summary>The channel's random id (stamped into its records).</summary>
    public ulong ChannelId => Volatile.Read(ref Control.ChannelId);

    public string Name { get; }

    /// <summary>The options as stored with the channel, with this process's own wait settings.</summary>
    public SharedChannelOptions Options { get; }

    public SegmentAttachment Segment => _segment;

    /// <summary>Where the channel's control block starts in the segment.</summary>
    public long ControlOffset => _control;

    public RingHeader Header => _ring.Header;

    /// <summary>The identity of a prioritized channel's comparer (as stored); null for the other kinds.</summary>
    public string? ComparerIdentity => _order?.Identity;

    /// <summary>The ring under the channel (for tests and diagnostics).</summary>
    internal IRing<T> Ring => _ring;

    public bool IsDetached => Volatile.Read(ref _detached) != 0;

    private ref ChannelControl Control => ref _segment.Memory.Ref<ChannelControl>(_control);

    // ---------------------------------------------------------------- making and opening

    internal enum OpenMode
    {
        Create,
        Open,
        OpenOrCreate,
    }

    /// <summary>
    /// Creates or opens the channel <paramref name="name"/> in <paramref name="segment"/>. Exactly one
    /// process lays it out (the directory's find-or-construct is atomic across processes); the others
    /// wait until it is ready, and take over from an initializer that died.
    /// </summary>
    public static ChannelCore<T> Open(SegmentAttachment segment, string name, SharedChannelOptions? options, Action<T>? itemDropped, OpenMode mode) =>
        Open(segment, name, options, itemDropped, mode, null);

    /// <summary>
    /// As above, with the ownership rules of the elements' heap storage: <paramref name="ownership"/> for
    /// record channels; null for a <see cref="SharedChannel{T}"/>, which gets the rules of its
    /// <see cref="ShmString"/> / <see cref="ShmVector{T}"/> fields, if it has any.
    /// </summary>
    /// <remarks><paramref name="order"/>: a prioritized channel's comparer (made prioritized, or checked against the stored one).</remarks>
    public static ChannelCore<T> Open(SegmentAttachment segment, string name, SharedChannelOptions? options, Action<T>? itemDropped, OpenMode mode, ElementOwnership<T>? ownership, PriorityOrder<T>? order = null)
    {
        TypeLayoutInfo element = TypeLayout<T>.Info;
        if (ownership is null && TypeLayout<T>.OwnedHandleOffsets.Length != 0)
        {
            ownership = new OwnedFieldsOwnership<T>(TypeLayout<T>.OwnedHandleOffsets);
        }

        if (ownership is not null && ownership.OwnedOffsets.Length > ChannelControl.MaxOwnedHandles)
        {
            throw new ArgumentException(
                $"Type {element.DisplayName} holds {ownership.OwnedOffsets.Length} ShmString / ShmVector fields; a channel element may own at most {ChannelControl.MaxOwnedHandles}.");
        }

        // The lookup (or creation) and this process's reference (its endpoint row) are one step under the
        // directory's lock, as the last reference going and the destruction are: a channel is never freed
        // between being found and being referenced, so nothing here touches a freed control block.
        string objectName = ChannelLayout.ObjectName(name);
        ObjectDirectory directory = segment.Directory;
        ObjectRef found;
        bool created = false;
        int row;
        try
        {
            using (directory.Lock())
            {
                found = mode == OpenMode.Open
                    ? directory.FindOrConstructLocked(objectName, default(ChannelControl), mayFind: true, mayCreate: false, out _)
                    : directory.FindOrConstructLocked(objectName, default(ChannelControl), mayFind: mode == OpenMode.OpenOrCreate, mayCreate: true, out created);
                row = found.IsNull ? -1 : ClaimEndpoint(segment, name, found.ValueOffset);
            }
        }
        catch (InvalidOperationException) when (mode == OpenMode.Create)
        {
            throw new InvalidOperationException($"Segment '{segment.Name}' already has a channel '{name}'.");
        }
        catch (InvalidCastException e)
        {
            throw new InvalidSegmentException(segment.Name, $"the object for channel '{name}' is not a channel control block ({e.Message})");
        }

        if (found.IsNull)
        {
            throw new KeyNotFoundException($"Segment '{segment.Name}' has no channel '{name}'.");
        }

        var core = new ChannelCore<T>(segment, name, found.Block, found.ValueOffset, (options ?? new SharedChannelOptions(1)).Clone(), itemDropped, ownership);
        core._endpoint = row;
        core._order = order;
        try
        {
            core.WaitReadyOrInitialize(options, created, element);
            core.Attach(options, element);
        }
        catch
        {
            // A channel we could not use: give the reference back (destroying it if it was the last of a
            // removed one, or of one whose making failed here: a failed create leaves nothing).
            core.AbandonInitialization();
            core.ReleaseReference(lastInstanceHere: !core.HasOtherInstance());
            throw;
        }

        ownership?.Bind(core);
        return core;
    }

    /// <summary>Waits until the channel is ready (or lays it out).</summary>
    private void WaitReadyOrInitialize(SharedChannelOptions? options, bool created, TypeLayoutInfo element)
    {
        ref ChannelControl c = ref Control;
        long start = Environment.TickCount64;
        long deadline = start + (long)s_initTimeout.TotalMilliseconds;
        var spinner = default(SpinWait);
        while (true)
        {
            int state = Volatile.Read(ref c.State);
            if (state == ChannelControl.StateReady)
            {
                return;
            }

            if (state == ChannelControl.StateRemoved)
            {
                throw new InvalidOperationException($"Channel '{Name}' was removed from segment '{_segment.Name}'.");
            }

            if (state != ChannelControl.StateInitializing)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has an unknown state {state}.");
            }

            // Whoever names itself initializer lays the channel out: the creator, or (with options to do
            // it with) anyone after an initializer that died. The directory entry is made before the
            // layout, so a creator killed in between must not leave a channel nobody can open; a creator
            // that has not named itself yet gets a moment before its entry counts as abandoned.
            uint initializer = Volatile.Read(ref c.Initializer);
            bool abandoned = initializer == 0
                ? created || Environment.TickCount64 - start > 500
                : !_segment.Processes.IsAlive(new OwnerId(initializer));
            if (options is not null && abandoned &&
                Interlocked.CompareExchange(ref c.Initializer, _segment.Owner.Value, initializer) == initializer)
            {
                Initialize(options, element);
                return;
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new TimeoutException($"Channel '{Name}' in segment '{_segment.Name}' did not become ready within {s_initTimeout}.");
            }

            spinner.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>Lays out the channel: the ring block first (ours until it is published), then the shape, then ready.</summary>
    private void Initialize(SharedChannelOptions options, TypeLayoutInfo element)
    {
        ref ChannelControl c = ref Control;
        SharedHeap heap = _segment.Heap;
        if (c.RingBlock != 0)
        {
            // A dead initializer's ring, already given to the segment: free it and start over.
            var old = ShmHandle.FromValue(c.RingBlock);
            c.RingBlock = 0;
            try
            {
                heap.Free(old);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                // Reclaimed with its dead owner already.
            }
        }

        bool unbounded = options.IsUnbounded;
        RingKind kind = ChannelRing<T>.KindFor(options.SingleReader, options.SingleWriter, options.FullMode, unbounded, _order is not null);
        int capacity = unbounded ? options.ChunkCapacity : options.Capacity; // an unbounded channel stores its chunk capacity
        BoundedChannelFullMode fullMode = unbounded ? BoundedChannelFullMode.Wait : options.FullMode;
        long bytes = ChannelRing<T>.RequiredBytes(kind, capacity) + RingLayout.LineSize;
        if (bytes > SharedSegment.MaxAllocationSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Capacity, $"A ring of {options.Capacity} elements of {element.Size} bytes exceeds the largest allocation.");
        }

        if (!heap.TryAllocate((int)bytes, ShmOwnership.Process, RingBlockTag, out ShmHandle block))
        {
            throw new OutOfSharedMemoryException($"Out of shared memory: {bytes} bytes for the ring of channel '{Name}' in segment '{_segment.Name}'.{_segment.DescribeMemoryLimit()}");
        }

        try
        {
            Lay(options, element, kind, capacity, fullMode, unbounded, block, bytes);
        }
        catch
        {
            // Nothing of a failed layout stays: the ring block (still ours), an unbounded ring's first
            // chunk, semaphores made before the failure. The control block goes with our reference.
            if (_ring is UnboundedRing<T> chain)
            {
                chain.Dispose();
                UnboundedRing<byte>.FreeChain(_segment, c.RingOffset, c.RingLength);
            }

            _ring = null!;
            NotifierSemaphores.Destroy(_segment.Name, ref c.Notifier);
            c.RingBlock = 0;
            heap.Free(block);
            throw;
        }
    }

    /// <summary>The layout itself, in the ring block the initializer allocated; published ready last.</summary>
    private void Lay(SharedChannelOptions options, TypeLayoutInfo element, RingKind kind, int capacity, BoundedChannelFullMode fullMode, bool unbounded, ShmHandle block, long bytes)
    {
        ref ChannelControl c = ref Control;
        SharedHeap heap = _segment.Heap;
        long payload = heap.GetPayloadOffset(block, out _, out _);
        long ring = (payload + RingLayout.LineSize - 1) & ~(long)(RingLayout.LineSize - 1);
        long length = bytes - (ring - payload);
        _ring = ChannelRing<T>.Create(kind, _segment, ring, length, capacity, options.SingleReader, options.SingleWriter, _order);

        c.Magic = ChannelControl.MagicValue;
        c.Version = ChannelControl.CurrentVersion;
        c.Capacity = capacity;
        c.FullMode = (int)fullMode;
        c.Flags = (options.SingleReader ? ChannelControl.FlagSingleReader : 0) | (options.SingleWriter ? ChannelControl.FlagSingleWriter : 0) |
            (unbounded ? ChannelControl.FlagUnbounded : 0) | (options.Persistent ? ChannelControl.FlagPersistent : 0) |
            (options.RetainUndelivered ? 0 : ChannelControl.FlagDiscardUndelivered);
        c.ElementFingerprint = element.Fingerprint;
        c.ElementSize = element.Size;
        c.RingKind = (int)kind;
        c.RingOffset = ring;
        c.RingLength = length;
        c.CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        NotifierSemaphores.Create(_segment.Name, ref c.Notifier, options.Notifier);
        Serialization.SerializedElementIdentity? serialized = _ownership?.Serialized;
        Span<byte> typeName = _segment.Memory.Span(_control + ChannelControl.ElementTypeNameOffset, ChannelControl.ElementTypeNameCapacity);
        System.Text.Unicode.Utf8.FromUtf16(serialized?.TypeName ?? element.DisplayName, typeName, out _, out int typeNameLength, replaceInvalidSequences: true, isFinalBlock: true);
        c.ElementTypeNameLength = typeNameLength;
        Span<byte> identity = _segment.Memory.Span(_control + ChannelControl.SerializerIdentityOffset, ChannelControl.SerializerIdentityCapacity);
        identity.Clear();
        System.Text.Unicode.Utf8.FromUtf16(serialized?.SerializerIdentity ?? string.Empty, identity, out _, out int identityLength, replaceInvalidSequences: true, isFinalBlock: true);
        c.SerializerIdentityLength = identityLength;
        c.SerializerFingerprint = serialized?.Fingerprint ?? 0;
        c.ElementKind = _ownership?.Kind ?? ChannelControl.ElementKindPlain;
        c.MaxRecordSize = c.ElementKind == ChannelControl.ElementKindPlain ? 0 : options.MaxRecordSize;
        int[] owned = _ownership?.OwnedOffsets ?? [];
        for (int i = 0; i < ChannelControl.MaxOwnedHandles; i++)
        {
            _segment.Memory.Int32(ChannelLayout.OwnedHandleOffset(_control, i)) = i < owned.Length ? owned[i] : 0;
        }

        c.OwnedHandleCount = owned.Length;
        ulong id;
        do
        {
            id = (ulong)Random.Shared.NextInt64() ^ ((ulong)Environment.ProcessId << 40);
        }
        while (id == 0);

        c.ChannelId = id;
        Volatile.Write(ref c.RingBlock, block.Value);
        (_ring as UnboundedRing<T>)?.GiveToSegment();
        heap.SetOwnership(block, ShmOwnership.Segment);

        // Counted before it can hold anything, uncounted when destroyed: the segment keeps its name meanwhile.
        CountChannel(_segment);
        c.Flags |= ChannelControl.FlagCounted;
        Volatile.Write(ref c.State, ChannelControl.StateReady);
    }

    /// <summary>The block tag of ring blocks, for inspection.</summary>
    public const uint RingBlockTag = 0x4348_4E31; // "CHN1"

    /// <summary>Checks the stored shape against this process's type and options and attaches the ring (the endpoint row is taken already).</summary>
    private void Attach(SharedChannelOptions? options, TypeLayoutInfo element)
    {
        ref ChannelControl c = ref Control;
        CheckStoredValues(); // impossible values are damage before any comparison with this process's type
        if (c.ElementSize != element.Size || c.ElementFingerprint != element.Fingerprint)
        {
            throw new InvalidCastException(
                $"Channel '{Name}' carries elements of {c.ElementSize} bytes (layout {c.ElementFingerprint:x16}); it cannot be used with {element.DisplayName} ({element.Size} bytes, layout {element.Fingerprint:x16}).");
        }

        CheckElementKind(options);
        var kind = (RingKind)c.RingKind;
        var fullMode = (BoundedChannelFullMode)c.FullMode;
        bool singleReader = (c.Flags & ChannelControl.FlagSingleReader) != 0;
        bool singleWriter = (c.Flags & ChannelControl.FlagSingleWriter) != 0;
        bool persistent = (c.Flags & ChannelControl.FlagPersistent) != 0;
        bool retain = (c.Flags & ChannelControl.FlagDiscardUndelivered) == 0;
        var notifier = (ChannelNotifier)c.Notifier.Kind;
        if (!Enum.IsDefined(notifier))
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has a damaged control block (notifier {(int)notifier}).");
        }

        bool unbounded = (c.Flags & ChannelControl.FlagUnbounded) != 0;
        int maxCapacity = unbounded ? SharedChannelOptions.MaxChunkCapacity : SharedChannelOptions.MaxCapacity;
        if (c.Capacity < 1 || c.Capacity > maxCapacity || (uint)fullMode > (uint)BoundedChannelFullMode.DropWrite ||
            kind != ChannelRing<T>.KindFor(singleReader, singleWriter, fullMode, unbounded, unbounded && kind == RingKind.Prioritized))
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has a damaged control block.");
        }

        _order = PrioritizedChannel.CheckOrder(Name, kind, options is not null, _order);

        if (options is not null && (options.IsUnbounded != unbounded ||
            (unbounded ? options.ChunkCapacity != c.Capacity : options.Capacity != c.Capacity || options.FullMode != fullMode) ||
            options.SingleReader != singleReader || options.SingleWriter != singleWriter ||
            options.Persistent != persistent || options.RetainUndelivered != retain || options.Notifier != notifier))
        {
            string exists = unbounded ? $"unbounded with chunks of {c.Capacity}" : $"capacity {c.Capacity}, {fullMode}";
            string asked = options.IsUnbounded ? $"unbounded with chunks of {options.ChunkCapacity}" : $"capacity {options.Capacity}, {options.FullMode}";
            throw new ArgumentException(
                $"Channel '{Name}' exists {exists}, single reader {singleReader}, single writer {singleWriter}, persistent {persistent}, retain undelivered {retain}, notifier {notifier}; " +
                $"the options ask for {asked}, single reader {options.SingleReader}, single writer {options.SingleWriter}, persistent {options.Persistent}, retain undelivered {options.RetainUndelivered}, notifier {options.Notifier}.",
                nameof(options));
        }

        if (unbounded)
        {
            Options.ChunkCapacity = c.Capacity;
        }
        else
        {
            Options.Capacity = c.Capacity;
        }

        Options.IsUnbounded = unbounded;
        Options.FullMode = fullMode;
        Options.SingleReader = singleReader;
        Options.SingleWriter = singleWriter;
        Options.Persistent = persistent;
        Options.RetainUndelivered = retain;
        Options.Notifier = notifier;
        _ring ??= ChannelRing<T>.Attach(kind, _segment, c.RingOffset, c.RingLength, singleReader, singleWriter, _order);
        _header = _ring.Header;
        _header.ReadersEvent.Ledger = new WaiterLedger(on => RecordWaiting(ChannelEndpoint.WaitingReaders, on));
        _header.WritersEvent.Ledger = new WaiterLedger(on => RecordWaiting(ChannelEndpoint.WaitingWriters, on));
        _spsc = _ring as SpscRing<T>;
        _notifierHold ??= NotifierSemaphores.Attach(_segment.Name, c.Notifier, _header.ReadersEvent, _header.WritersEvent);
        _completionEvent = new EventCount(_segment.Memory, _control + ChannelControl.CompletionSequenceOffset, _control + ChannelControl.CompletionWaitersOffset);
        AddInstance();
    }

    /// <summary>
    /// Checks the stored element kind, owned-handle table and record size limit against this process's
    /// view of the element (a record channel opened as a channel of structs, or the reverse, is an
    /// <see cref="InvalidCastException"/>), and adopts the stored limit.
    /// </summary>
    private void CheckElementKind(SharedChannelOptions? options)
    {
        ref ChannelControl c = ref Control;
        int expectedKind = _ownership?.Kind ?? ChannelControl.ElementKindPlain;
        if (c.ElementKind != expectedKind)
        {
            throw new InvalidCastException(
                $"Channel '{Name}' carries {KindName(c.ElementKind)}; it was opened as a channel of {KindName(expectedKind)}.");
        }

        int[] owned = _ownership?.OwnedOffsets ?? [];
        int count = c.OwnedHandleCount; // within bounds: CheckStoredValues
        for (int i = 0; i < ChannelControl.MaxOwnedHandles; i++)
        {
            int stored = _segment.Memory.Int32(ChannelLayout.OwnedHandleOffset(_control, i));
            int expected = i < owned.Length ? owned[i] : 0;
            if (count != owned.Length || stored != expected)
            {
                throw new InvalidCastException($"Channel '{Name}' records other owned heap handles in its elements than {typeof(T).Name} has.");
            }
        }

        if (expectedKind != ChannelControl.ElementKindPlain)
        {
            if (c.MaxRecordSize < 1 || c.MaxRecordSize > SharedChannelOptions.MaxRecordSizeLimit)
            {
                ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has a damaged control block (largest record {c.MaxRecordSize}).");
            }

            if (options is not null && options.MaxRecordSize != c.MaxRecordSize)
            {
                throw new ArgumentException(
                    $"Channel '{Name}' exists with records of at most {c.MaxRecordSize} bytes; the options ask for {options.MaxRecordSize}.", nameof(options));
            }

            Options.MaxRecordSize = c.MaxRecordSize;
        }

        CheckSerializer();
        if (c.ChannelId == 0)
        {
            ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has a damaged control block (no channel id).");
        }
    }

    /// <summary>
    /// A serialized channel: the stored fingerprint of the serializer identity and element type name must
    /// be this process's (<see cref="InvalidCastException"/> otherwise, naming both sides).
    /// </summary>
    private void CheckSerializer()
    {
        ref ChannelControl c = ref Control;
        Serialization.SerializedElementIdentity? serialized = _ownership?.Serialized;
        if (serialized is null || c.SerializerFingerprint == serialized.Fingerprint)
        {
            return;
        }

        int identityLength = Math.Clamp(c.SerializerIdentityLength, 0, ChannelControl.SerializerIdentityCapacity);
        int typeNameLength = Math.Clamp(c.ElementTypeNameLength, 0, ChannelControl.ElementTypeNameCapacity);
        string storedIdentity = System.Text.Encoding.UTF8.GetString(_segment.Memory.Span(_control + ChannelControl.SerializerIdentityOffset, identityLength));
        string storedType = System.Text.Encoding.UTF8.GetString(_segment.Memory.Span(_control + ChannelControl.ElementTypeNameOffset, typeNameLength));
        throw new InvalidCastException(
            $"Channel '{Name}' carries {storedType} serialized by '{storedIdentity}'; it was opened for {serialized.TypeName} serialized by '{serialized.SerializerIdentity}'. Writer and reader must use the same serializer and element type.");
    }

    private static string KindName(int kind) => kind switch
    {
        ChannelControl.ElementKindPlain => "unmanaged elements",
        ChannelControl.ElementKindRecords => "records",
        ChannelControl.ElementKindSerialized => "serialized elements",
        _ => $"elements of unknown kind {kind}",
    };

    private ref ChannelEndpoint Endpoint(int index) => ref _segment.Memory.Ref<ChannelEndpoint>(ChannelLayout.EndpointOffset(_control, index));

    // ---------------------------------------------------------------- roles

    /// <summary>Makes this process a reader of the channel (first use only: one field read afterwards).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EnsureReader()
    {
        // One test covers both first use and use after Dispose (Detach clears the roles).
        if ((_roles & ChannelEndpoint.RoleReader) == 0)
        {
            TakeRole(ChannelEndpoint.RoleReader);
        }
    }

    /// <summary>Makes this process a writer of the channel (first use only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EnsureWriter()
    {
        // One test covers both first use and use after Dispose (Detach clears the roles).
        if ((_roles & ChannelEndpoint.RoleWriter) == 0)
        {
            TakeRole(ChannelEndpoint.RoleWriter);
        }
    }

    private void TakeRole(int role)
    {
        ThrowIfDetached();
        bool single = role == ChannelEndpoint.RoleReader ? Options.SingleReader : Options.SingleWriter;
        if (single)
        {
            ref uint lease = ref role == ChannelEndpoint.RoleReader ? ref Control.ReaderLease : ref Control.WriterLease;
            uint me = _segment.Owner.Value;
            while (true)
            {
                uint holder = Volatile.Read(ref lease);
                if (holder == me)
                {
                    break;
                }

                if (holder != 0 && _segment.Processes.IsAlive(new OwnerId(holder)))
                {
                    string end = role == ChannelEndpoint.RoleReader ? "reader" : "writer";
                    throw new InvalidOperationException(
                        $"Channel '{Name}' has a single {end}, and another live process holds that end ({new OwnerId(holder)}). It can be taken over once that process has disposed its channel or died.");
                }

                if (Interlocked.CompareExchange(ref lease, me, holder) == holder)
                {
                    break;
                }
            }
        }

        Interlocked.Or(ref Endpoint(_endpoint).Roles, role);
        _roles |= role;
    }

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// How often a synchronous try retries a cell a live peer holds in flight before it reports failure
    /// (a pending operation then sleeps on the event count, which that peer's publish signals). Each
    /// retry past the ring's short spin asks the process table about the holder (a /proc read), so a
    /// holder that is stopped (SIGSTOP, a debugger) between its claim and its publish costs a try a few
    /// hundred milliseconds at most; at 100,000 it cost ten seconds.
    /// </summary>
    private const int MaxInFlightAttempts = 2_000;

    /// <summary>The BCL's TryWrite: false when full (Wait mode) or completed; drop modes always succeed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite(T item)
    {
        EnsureWriter();
        if (_header.IsCompleted)
        {
            return false;
        }

        if (_ownership is not null)
        {
            return TryWriteOwned(item);
        }

        // SPSC (Wait or DropWrite): the sealed ring's TryWrite directly; only a full ring takes the general path.
        if (_spsc is { } spsc && spsc.TryWrite(in item))
        {
            return true;
        }

        return TryWriteSlow(item);
    }

    /// <summary>
    /// TryWrite of an element that owns heap storage: the storage goes to the channel before the item
    /// is published (a reader may take it the moment it is), and back to the writer if the ring refuses it.
    /// </summary>
    private bool TryWriteOwned(T item)
    {
        ElementOwnership<T> ownership = _ownership!;
        ownership.HandOver(in item);
        bool written;
        try
        {
            written = (_spsc is { } spsc && spsc.TryWrite(in item)) || TryWriteSlow(item);
        }
        catch
        {
            ownership.TakeBack(in item);
            throw;
        }

        if (!written)
        {
            ownership.TakeBack(in item);
        }

        return written;
    }

    /// <summary>TryWrite past the SPSC fast path: the general ring (full, drop modes, MPMC).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryWriteSlow(T item)
    {
        BoundedChannelFullMode mode = Options.FullMode;
        for (int attempt = 0; ; attempt++)
        {
            switch (_ring.TryWrite(in item, mode, out T dropped))
            {
                case RingStatus.Success:
                    return true;
                case RingStatus.Full:
                    return false;
                case RingStatus.DroppedItem:
                case RingStatus.Replaced:
                    // The user's callback runs after the ring operation is over: no claim is held here.
                    OnDropped(in dropped);
                    return true;
                case RingStatus.Evicted:
                    OnDropped(in dropped);
                    continue;
                case RingStatus.InFlight:
                    if (!BackOff(attempt))
                    {
                        return false;
                    }

                    continue;
                default:
                    ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' returned an unexpected ring status.");
                    return false;
            }
        }
    }

    /// <summary>
    /// Waits a little for a live peer that is between two steps on the cell this operation needs (it
    /// finishes in a moment; a dead one is detected by the ring); false after too long a wait, and the
    /// operation then reports "not now" (full or empty), which its async form retries.
    /// </summary>
    private static bool BackOff(int attempt)
    {
        if (attempt > MaxInFlightAttempts)
        {
            return false;
        }

        Thread.SpinWait(Math.Min(1 << Math.Min(attempt, 10), 256));
        if (attempt > 64)
        {
            Thread.Yield();
        }

        return true;
    }

    /// <summary>Whether a write may succeed now (space, or a drop mode); completion is checked by the caller.</summary>
    /// <remarks>An unbounded channel always has space: its writes never wait (they fail only when the segment is out of memory).</remarks>
    public bool HasSpace => Options.IsUnbounded || Options.FullMode != BoundedChannelFullMode.Wait || _ring.Count < Options.Capacity;

    // ---------------------------------------------------------------- reading

    /// <summary>The BCL's TryRead; after the read that drains a completed channel, completion is announced.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead(out T item)
    {
        EnsureReader();
        if (_spsc is { } spsc)
        {
            // SPSC: no claims, so no in-flight cells; the sealed ring directly, and the same completion check.
            bool read = spsc.TryRead(out item);
            if (_header.IsCompleted)
            {
                OnCompletedAndMaybeDrained();
            }

            if (read && _ownership is not null)
            {
                _ownership.Receive(ref item);
            }

            return read;
        }

        return TryReadSlow(out item);
    }

    /// <summary>TryRead on the general ring (MPMC: claims, in-flight cells).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryReadSlow(out T item)
    {
        for (int attempt = 0; ; attempt++)
        {
            switch (_ring.TryRead(out item))
            {
                case RingStatus.Success:
                    if (_ring.Header.IsCompleted)
                    {
                        OnCompletedAndMaybeDrained();
                    }

                    _ownership?.Receive(ref item);
                    return true;
                case RingStatus.Empty:
                    if (_ring.Header.IsCompleted)
                    {
                        OnCompletedAndMaybeDrained();
                    }

                    return false;
                case RingStatus.InFlight:
                    if (!BackOff(attempt))
                    {
                        return false;
                    }

                    continue;
                default:
                    ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' returned an unexpected ring status.");
                    return false;
            }
        }
    }

    public bool TryPeek(out T item)
    {
        EnsureReader();
        return _ring.TryPeek(out item);
    }

    public int Count => _ring.Count;

    // ---------------------------------------------------------------- completion

    public bool IsCompleted => _header.IsCompleted;

    /// <summary>Records the completion for every process (the first call in any process wins) and wakes everyone.</summary>
    public bool TryComplete(Exception? error)
    {
        ThrowIfDetached();
        if (!_ring.Header.TryComplete(_segment.Owner, error))
        {
            return false;
        }

        _localError = error;
        _ring.Header.ReadersEvent.Signal();
        _ring.Header.WritersEvent.Signal();
        OnCompletedAndMaybeDrained();
        _completionEvent.Signal();
        return true;
    }

    /// <summary>
    /// The error the channel was completed with, as this process sees it: the same object where it was
    /// completed, a <see cref="RemoteChannelException"/> (or a canceled exception) elsewhere; null for a
    /// plain <c>Complete()</c>. Only meaningful once completed.
    /// </summary>
    public Exception? CompletionError()
    {
        NoteCompletionSeen();
        if (_localError is not null)
        {
            return _localError;
        }

        RingCompletion completion = _ring.Header.ReadCompletion();
        if (completion.State == RingCompletionState.Faulted && completion.ExceptionType == typeof(ChannelRemovedException).FullName)
        {
            return new ChannelRemovedException(completion.Message ?? $"Channel '{Name}' was removed.");
        }

        return completion.State switch
        {
            RingCompletionState.Faulted => new RemoteChannelException(completion.ExceptionType ?? "unknown", completion.Message ?? string.Empty),
            RingCompletionState.Canceled => new OperationCanceledException(completion.Message),
            _ => null,
        };
    }

    /// <summary>The exception a read or write on a completed channel throws (the BCL's rules).</summary>
    public Exception ClosedException()
    {
        Exception? error = CompletionError();
        return error switch
        {
            null => new ChannelClosedException(),
            OperationCanceledException oce => oce,
            ChannelRemovedException removed => removed,
            _ => new ChannelClosedException(error),
        };
    }

    /// <summary>This process's Completion task: done when the channel is completed and drained.</summary>
    public Task Completion
    {
        get
        {
            lock (_completionLock)
            {
                if (_completion is null)
                {
                    _completion = new TaskCompletionSource(Options.AllowSynchronousContinuations ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
                    _ = WatchCompletionAsync();
                }

                return _completion.Task;
            }
        }
    }

    private void OnCompletedAndMaybeDrained()
    {
        if (_ring.Count != 0)
        {
            return;
        }

        // Drained and completed: tell this process's Completion, and the other processes' watchers.
        NoteCompletionSeen();
        _completionEvent.Signal();
        TaskCompletionSource? completion;
        lock (_completionLock)
        {
            completion = _completion;
        }

        if (completion is not null)
        {
            FinishCompletion(completion);
        }
    }

    private void FinishCompletion(TaskCompletionSource completion)
    {
        switch (CompletionError())
        {
            case null:
                completion.TrySetResult();
                break;
            case OperationCanceledException oce:
                completion.TrySetCanceled(oce.CancellationToken);
                break;
            case Exception error:
                completion.TrySetException(error);
                break;
        }
    }

    /// <summary>Waits (no thread) on the completion event until the channel is completed and drained.</summary>
    private async Task WatchCompletionAsync()
    {
        TaskCompletionSource completion = _completion!;
        try
        {
            while (!completion.Task.IsCompleted && !IsDetached && !_segment.IsDetached)
            {
                int token = _completionEvent.PrepareWait();
                if (_ring.Header.IsCompleted && _ring.Count == 0)
                {
                    _completionEvent.CancelWait();
                    FinishCompletion(completion);
                    return;
                }

                // Resumed inline on the waiter thread, inside its completion pass: a segment being
                // detached waits for that pass before it unmaps, so the checks above never read unmapped
                // memory. (Completion's own continuations are queued: the task was made that way.)
                await _completionEvent.WaitAsync(token, runContinuationsAsynchronously: false, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidSegmentException or ObjectDisposedException)
        {
            completion.TrySetException(e);
        }
    }

    // ---------------------------------------------------------------- waiting

    private readonly Stack<ReadOperation<T>> _reads = new();
    private readonly Stack<WriteOperation<T>> _writes = new();
    private readonly Stack<WaitOperation<T>> _dataWaits = new();
    private readonly Stack<WaitOperation<T>> _spaceWaits = new();

    /// <summary>A pending read: pooled, so that waiting allocates nothing once warm.</summary>
    public ValueTask<T> ReadAsync(CancellationToken cancellationToken)
    {
        EnsureReader();
        ReadOperation<T>? op;
        lock (_reads)
        {
            _reads.TryPop(out op);
        }

        return (op ?? new ReadOperation<T>(this)).Start(cancellationToken);
    }

    /// <summary>A pending write on a full channel.</summary>
    public ValueTask WriteAsync(T item, CancellationToken cancellationToken)
    {
        EnsureWriter();
        if (Options.IsUnbounded)
        {
            // Writes never wait: a failed write on an open unbounded channel means the segment is out of memory.
            return ValueTask.FromException(new OutOfSharedMemoryException(
                $"Out of shared memory: segment '{_segment.Name}' has no room for another chunk of unbounded channel '{Name}'.{_segment.DescribeMemoryLimit()}"));
        }

        WriteOperation<T>? op;
        lock (_writes)
        {
            _writes.TryPop(out op);
        }

        return (op ?? new WriteOperation<T>(this)).Start(item, cancellationToken);
    }

    /// <summary>
    /// The BCL's <c>WaitToReadAsync</c> for readers that hand out something else than <typeparamref name="T"/>
    /// (record and serialized channels): true at once when an item is there, false (or the completion's
    /// error) once completed and drained, a pending wait otherwise.
    /// </summary>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        EnsureReader();
        if (Count > 0)
        {
            return new ValueTask<bool>(true);
        }

        if (IsCompleted)
        {
            if (Count > 0)
            {
                return new ValueTask<bool>(true);
            }

            Exception? error = CompletionError();
            return error is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(error);
        }

        return WaitAsync(forData: true, cancellationToken);
    }

    /// <summary>The BCL's <c>WaitToWriteAsync</c>, for the same writers: false (or the error) once completed, true when there is room.</summary>
    public ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        EnsureWriter();
        if (IsCompleted)
        {
            Exception? error = CompletionError();
            return error is null ? new ValueTask<bool>(false) : ValueTask.FromException<bool>(error);
        }

        return HasSpace ? new ValueTask<bool>(true) : WaitAsync(forData: false, cancellationToken);
    }

    /// <summary>A pending WaitToReadAsync (<paramref name="forData"/>) or WaitToWriteAsync.</summary>
    public ValueTask<bool> WaitAsync(bool forData, CancellationToken cancellationToken)
    {
        if (forData)
        {
            EnsureReader();
        }
        else
        {
            EnsureWriter();
        }

        Stack<WaitOperation<T>> pool = forData ? _dataWaits : _spaceWaits;
        WaitOperation<T>? op;
        lock (pool)
        {
            pool.TryPop(out op);
        }

        return (op ?? new WaitOperation<T>(this, forData)).Start(cancellationToken);
    }

    internal void ReturnRead(ReadOperation<T> op) => Return(_reads, op);

    internal void ReturnWrite(WriteOperation<T> op) => Return(_writes, op);

    internal void ReturnWait(WaitOperation<T> op, bool forData) => Return(forData ? _dataWaits : _spaceWaits, op);

    private static void Return<TOp>(Stack<TOp> pool, TOp op)
    {
        lock (pool)
        {
            if (pool.Count < ChannelPool.Capacity)
            {
                pool.Push(op);
            }
        }
    }

    /// <summary>After a sleep slice with no change: a reader (writer) gives up when every writer (reader) has died.</summary>
    public void ThrowIfAbandoned(bool waitingForData) =>
        ThrowIfAbandoned(waitingForData ? ChannelEndpoint.RoleWriter : ChannelEndpoint.RoleReader);

    /// <summary>
    /// Throws <see cref="ChannelAbandonedException"/> when processes took <paramref name="role"/> on
    /// this channel and every one of them has died (none detached cleanly, none lives).
    /// </summary>
    private void ThrowIfAbandoned(int role)
    {
        int dead = 0;
        for (int i = 0; i < ChannelControl.EndpointCount; i++)
        {
            ref ChannelEndpoint row = ref Endpoint(i);
            uint owner = Volatile.Read(ref row.Owner);
            if (owner == 0 || (Volatile.Read(ref row.Roles) & role) == 0)
            {
                continue;
            }

            if (_segment.Processes.IsAlive(new OwnerId(owner)))
            {
                return;
            }

            dead++;
        }

        if (dead > 0)
        {
            string side = role == ChannelEndpoint.RoleWriter ? "writer" : "reader";
            throw new ChannelAbandonedException(
                $"Every {side} process of channel '{Name}' ({dead}) died without completing it. The channel stays open: a new {side} may go on.");
        }
    }

    /// <summary>Spins and yields as the options say while <paramref name="ready"/> is false; true if it became true.</summary>
    public bool SpinUntil(Func<ChannelCore<T>, bool> ready)
    {
        int spins = Options.SpinCount;
        for (int i = 0; i < spins; i++)
        {
            if (ready(this))
            {
                return true;
            }

            Thread.SpinWait(8);
        }

        for (int i = 0; i < Options.YieldCount; i++)
        {
            if (ready(this))
            {
                return true;
            }

            Thread.Yield();
        }

        return ready(this);
    }

    // ---------------------------------------------------------------- detaching (the rest: ChannelCore.Lifetime.cs)

    public void ThrowIfDetached()
    {
        if (IsDetached)
        {
            ThrowHelper.ThrowObjectDisposed(nameof(SharedChannel<T>));
        }
    }
}
