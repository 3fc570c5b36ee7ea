using SharedMemChannels.Records;

namespace SharedMemChannels;

/// <summary>
/// A record of a <see cref="SharedRecordChannel"/>: a block of the segment's heap that a writer fills in
/// place and a reader reads in place (zero copy). A small value (no allocation) that stands for the
/// holder's ownership of the block.
/// </summary>
/// <remarks>
/// <para>
/// Ownership is tracked in shared memory, in the record's header and the heap block's owner: the writer
/// process owns a record from <see cref="SharedRecordWriter.Allocate"/> until it writes it; the channel
/// owns it while it is queued; the reader process owns it once read, until it disposes it. A process that
/// dies holding records has them reclaimed; records still queued when the channel is destroyed are freed.
/// </para>
/// <para>
/// Each holder may use the record only while it owns it. Misuse is an exception, never a stray access:
/// <list type="bullet">
/// <item><see cref="Span"/>, <see cref="Dispose"/> or a second write after the record was handed over
/// (written, disposed, or a copy of it was): <see cref="ObjectDisposedException"/> (an
/// <see cref="InvalidOperationException"/>).</item>
/// <item>Writing a record read from a channel: <see cref="InvalidOperationException"/> (copy it into a new record).</item>
/// <item>Writing a record of another channel or segment, or a default <see cref="ShmRecord"/>: <see cref="ArgumentException"/>.</item>
/// </list>
/// </para>
/// <para>
/// A new record's bytes are not cleared: fill all of <see cref="Span"/> (as with a rented array).
/// </para>
/// </remarks>
public readonly struct ShmRecord : IDisposable, IEquatable<ShmRecord>
{
    private readonly RecordOwnership? _owner;
    private readonly ulong _handle;
    private readonly ulong _word;
    private readonly int _length;

    internal ShmRecord(RecordOwnership owner, ShmHandle handle, ulong word, int length)
    {
        _owner = owner;
        _handle = handle.Value;
        _word = word;
        _length = length;
    }

    /// <summary>
    /// The record's bytes, in shared memory. Checked on each call: valid while this holder owns the record
    /// (until it is written, or disposed), an <see cref="ObjectDisposedException"/> afterwards. Do not keep
    /// the span past the write or the dispose.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The record was written, or disposed.</exception>
    /// <exception cref="InvalidOperationException">This is a default <see cref="ShmRecord"/>.</exception>
    public Span<byte> Span => _owner is null ? throw new InvalidOperationException("A default ShmRecord holds no record.") : _owner.GetSpan(this);

    /// <summary>The record's size in bytes (what the writer allocated).</summary>
    public int Length => _length;

    /// <summary>The record's heap block (for diagnostics; the record is used through <see cref="Span"/>).</summary>
    public ShmHandle Handle => ShmHandle.FromValue(_handle);

    /// <summary>Whether this is a default <see cref="ShmRecord"/>, which holds no record.</summary>
    public bool IsNull => _owner is null;

    internal RecordOwnership? Owner => _owner;

    internal ulong Word => _word;

    /// <summary>
    /// Frees the record: a reader is done with it, or a writer abandons one it did not write. Nothing for
    /// a default <see cref="ShmRecord"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The record was disposed already, or written (it is the channel's, then the reader's).</exception>
    public void Dispose() => _owner?.Dispose(in this);

    /// <inheritdoc />
    public bool Equals(ShmRecord other) => _handle == other._handle && _word == other._word && _length == other._length && ReferenceEquals(_owner, other._owner);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ShmRecord other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_handle, _word);

    /// <inheritdoc />
    public override string ToString() => IsNull ? "ShmRecord(null)" : $"ShmRecord({Handle}, {_length} bytes)";

    /// <summary>Whether two values stand for the same holding of the same record.</summary>
    public static bool operator ==(ShmRecord left, ShmRecord right) => left.Equals(right);

    /// <summary>Whether two values differ.</summary>
    public static bool operator !=(ShmRecord left, ShmRecord right) => !left.Equals(right);
}
