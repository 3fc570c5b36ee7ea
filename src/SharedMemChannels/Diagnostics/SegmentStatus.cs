namespace SharedMemChannels.Diagnostics;

/// <summary>What inspection made of a shared-memory object named like a segment.</summary>
public enum SegmentStatus
{
    /// <summary>An initialized segment of this layout version, consistent as far as it was read.</summary>
    Ready,

    /// <summary>
    /// Being initialized, or left uninitialized (empty, zeros, or a header not yet marked ready) by a
    /// creator that died; the next <c>Create</c> or <c>OpenOrCreate</c> of the name cleans such a leftover.
    /// </summary>
    Initializing,

    /// <summary>
    /// A segment of this library that cannot be trusted: truncated, resized by something else, a
    /// damaged header, process table, heap or directory. <see cref="SegmentReport.Problem"/> says what.
    /// </summary>
    Damaged,

    /// <summary>Not a segment of this library (or, for System V, a segment of another name on the same key).</summary>
    Foreign,

    /// <summary>A segment of this library written with another layout version.</summary>
    OtherVersion,

    /// <summary>The object exists but this process may not read it.</summary>
    Inaccessible,
}
