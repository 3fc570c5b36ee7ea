using SharedMemChannels.Objects;

using SharedMemChannels.Segments;

namespace SharedMemChannels;

/// <content>Named and anonymous objects.</content>
public sealed partial class SharedSegment
{
    private ObjectDirectory Objects => _attachment.Directory;

    /// <summary>
    /// A user's object name: valid, and not one of the library's own (<c>shmc.</c> names its channels',
    /// topics' and synchronization objects' control blocks, which only their own types may make, find or
    /// destroy: destroying a live channel's block through here would free it under its users).
    /// </summary>
    private static void ValidateObjectName(string name)
    {
        SharedName.Validate(name, nameof(name));
        if (name.StartsWith(DirectoryLayout.ReservedPrefix, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"Names beginning with '{DirectoryLayout.ReservedPrefix}' are reserved for the library's own objects (channels, topics, synchronization objects); use SharedChannel, SharedTopic, SharedMutex / SharedEvent / SharedSemaphore for those.",
                nameof(name));
        }
    }

    /// <summary>
    /// Creates the named object <paramref name="name"/>, zero-initialized. Other processes find it by name
    /// with <see cref="TryFind{T}"/>. It belongs to the segment and lives until <see cref="Destroy"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged type; its layout is recorded, and finding the object as a type of
    /// another layout fails.</typeparam>
    /// <param name="name">Letters, digits, '.', '_' and '-', at most <see cref="SharedName.MaxLength"/> characters.</param>
    /// <exception cref="ArgumentException">The name is not valid or begins with the library's reserved <c>shmc.</c>, or <typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> Construct<T>(string name)
        where T : unmanaged => Construct(name, default(T));

    /// <summary>Creates the named object <paramref name="name"/> holding <paramref name="value"/>.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="name">The object's name.</param>
    /// <param name="value">Its initial value, copied in before any other process can see the object.</param>
    /// <exception cref="ArgumentException">The name is not valid or begins with the library's reserved <c>shmc.</c>, or <typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> Construct<T>(string name, in T value)
        where T : unmanaged
    {
        ValidateObjectName(name);
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return PtrTo<T>(Objects.FindOrConstruct(name, in value, mayFind: false, mayCreate: true, out _));
    }

    /// <summary>
    /// Finds the named object, or creates it zero-initialized: atomically across processes, so that any
    /// number of racing processes all get the same object.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="name">The object's name.</param>
    /// <exception cref="ArgumentException">The name is not valid or begins with the library's reserved <c>shmc.</c>, or <typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="InvalidCastException">The object exists with another type.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> FindOrConstruct<T>(string name)
        where T : unmanaged => FindOrConstruct(name, default(T), out _);

    /// <summary>Finds the named object, or creates it holding <paramref name="value"/>; says which.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="name">The object's name.</param>
    /// <param name="value">The initial value if it is created.</param>
    /// <param name="created">True when this call created it.</param>
    /// <exception cref="ArgumentException">The name is not valid or begins with the library's reserved <c>shmc.</c>, or <typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="InvalidCastException">The object exists with another type.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> FindOrConstruct<T>(string name, in T value, out bool created)
        where T : unmanaged
    {
        ValidateObjectName(name);
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return PtrTo<T>(Objects.FindOrConstruct(name, in value, mayFind: true, mayCreate: true, out created));
    }

    /// <summary>Finds the named object; false when there is none.</summary>
    /// <typeparam name="T">The type it was constructed as (or one of the same layout).</typeparam>
    /// <param name="name">The object's name.</param>
    /// <param name="found">The object, or the null pointer.</param>
    /// <exception cref="ArgumentException">The name is not valid, or begins with the library's reserved <c>shmc.</c>.</exception>
    /// <exception cref="InvalidCastException">The object exists with another type.</exception>
    public bool TryFind<T>(string name, out ShmPtr<T> found)
        where T : unmanaged
    {
        ValidateObjectName(name);
        using SegmentAttachment.Use use = _attachment.EnterUse();
        found = PtrTo<T>(Objects.FindOrConstruct(name, default(T), mayFind: true, mayCreate: false, out _));
        return !found.IsNull;
    }

    /// <summary>
    /// Destroys the named object: removes the name and frees its block. Containers it holds
    /// (<see cref="ShmString"/>, <see cref="ShmVector{T}"/>) keep their storage: free them first.
    /// Returns false when there was no object of that name.
    /// </summary>
    /// <param name="name">The object's name.</param>
    /// <exception cref="ArgumentException">The name is not valid, or begins with the library's reserved <c>shmc.</c>.</exception>
    public bool Destroy(string name)
    {
        ValidateObjectName(name);
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return Objects.Destroy(name);
    }

    /// <summary>
    /// Creates an object with no name (Boost's <c>anonymous_instance</c>), zero-initialized, owned by the
    /// segment. Pass its <see cref="ShmPtr{T}.Handle"/> to other processes, which view it with
    /// <see cref="GetPtr{T}"/>; free it with <see cref="Free"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> ConstructAnonymous<T>()
        where T : unmanaged => ConstructAnonymous(default(T));

    /// <summary>Creates an object with no name holding <paramref name="value"/>, owned by the segment.</summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="value">Its initial value.</param>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> holds pointers.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the object.</exception>
    public ShmPtr<T> ConstructAnonymous<T>(in T value)
        where T : unmanaged
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        ShmHandle block = Objects.AllocateObject(ReadOnlySpan<byte>.Empty, TypeLayout<T>.Info, in value, ShmOwnership.Segment, out long valueOffset);
        return new ShmPtr<T>(this, block, valueOffset, 1);
    }

    /// <summary>
    /// A typed view of a block: an object (anonymous or named) of a type with the same layout, or a plain
    /// block seen as an array of <typeparamref name="T"/>.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="handle">The block.</param>
    /// <exception cref="ArgumentException">The handle is null or not a block of this segment.</exception>
    /// <exception cref="InvalidOperationException">The block was freed, or the handle is stale.</exception>
    /// <exception cref="InvalidCastException">The block is an object of another type.</exception>
    public ShmPtr<T> GetPtr<T>(ShmHandle handle)
        where T : unmanaged => new(this, handle);

    /// <summary>
    /// Allocates a block for <paramref name="count"/> values of <typeparamref name="T"/>, zeroed, and views it.
    /// </summary>
    /// <typeparam name="T">An unmanaged type.</typeparam>
    /// <param name="count">How many values, at least 1.</param>
    /// <param name="ownership">Whether the block dies with this process or lives in the segment.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is less than 1 or too large.</exception>
    /// <exception cref="OutOfSharedMemoryException">No room for the block.</exception>
    public ShmPtr<T> AllocateArray<T>(int count, ShmOwnership ownership = ShmOwnership.Process)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        int elementSize = SegmentMemory.SizeOf<T>();
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxAllocationSize / elementSize);
        ShmHandle handle = Allocate(count * elementSize, ownership);
        GetSpan(handle).Clear();
        return new ShmPtr<T>(this, handle);
    }

    /// <summary>The named objects of the segment, by name.</summary>
    public IReadOnlyList<NamedObjectInfo> GetNamedObjects()
    {
        using SegmentAttachment.Use use = _attachment.EnterUse();
        return Objects.List();
    }

    /// <summary>Runs <paramref name="action"/> holding the directory lock (the test host dies in there on purpose).</summary>
    internal void HoldDirectoryLockForTest(Action action) => Objects.HoldLockForTest(action);

    private ShmPtr<T> PtrTo<T>(ObjectRef found)
        where T : unmanaged => found.IsNull ? default : new ShmPtr<T>(this, found.Block, found.ValueOffset, 1);
}
