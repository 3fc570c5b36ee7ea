namespace SharedMemChannels.Platform;

/// <summary>A word to wait on with <see cref="IWaitOnAddress.WaitAny"/>, and the value it must still hold.</summary>
/// <param name="Address">The address of a 32-bit word in shared memory.</param>
/// <param name="Expected">The value under which the caller wants to sleep.</param>
internal readonly record struct WaitTarget(nint Address, int Expected);

/// <summary>
/// Sleep in the kernel until a 32-bit word in shared memory changes, and wake such sleepers, from
/// any process that maps the word.
/// </summary>
internal interface IWaitOnAddress
{
    /// <summary>Whether the kernel waits on many words at once; without it <see cref="WaitAny"/> falls back to polling in short slices.</summary>
    bool SupportsWaitAny { get; }

    /// <summary>The most words one <see cref="WaitAny"/> call can watch.</summary>
    int MaxWaitAny { get; }

    /// <summary>
    /// Sleeps while <paramref name="word"/> holds <paramref name="expected"/>, until woken or the timeout
    /// passes. Returns false only on timeout; spurious returns are possible, so callers re-check.
    /// </summary>
    bool Wait(ref int word, int expected, TimeSpan? timeout);

    /// <summary>Wakes up to <paramref name="count"/> sleepers on <paramref name="word"/>; returns how many woke.</summary>
    int Wake(ref int word, int count);

    /// <summary>
    /// Sleeps until any of the words changes. Returns the index of the word that woke the caller,
    /// <c>-1</c> when a word already differed on entry, or <c>-2</c> on timeout.
    /// </summary>
    int WaitAny(ReadOnlySpan<WaitTarget> targets, TimeSpan? timeout);
}
