namespace SharedMemChannels.Common;

/// <summary>
/// The one-continuation rule of the library's pooled <see cref="System.Threading.Tasks.Sources.IValueTaskSource"/>s:
/// a pending operation takes one continuation, a second <c>OnCompleted</c> is an
/// <see cref="InvalidOperationException"/> (as the BCL channels' operations refuse it).
/// </summary>
/// <remarks>
/// Why not leave it to <see cref="System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore{TResult}"/>: it
/// stores the caller's scheduling and execution contexts before it looks whether a continuation is there
/// already, so a second registration under a non-default <see cref="SynchronizationContext"/> fails inside
/// it with an <see cref="InvalidCastException"/>, having overwritten the first one's captured context.
/// The claim is checked (and the token before it) before the core is touched.
/// </remarks>
internal static class SingleContinuation
{
    /// <summary>
    /// Claims the operation's one continuation (<paramref name="registered"/> goes from 0 to 1; the
    /// operation sets it back to 0 when it is reset for its next use). Throws for a stale token (the
    /// operation was consumed and reused) and for a second registration.
    /// </summary>
    /// <param name="registered">The operation's flag.</param>
    /// <param name="token">The token of the ValueTask registering.</param>
    /// <param name="version">The operation's current version.</param>
    public static void Claim(ref int registered, short token, short version)
    {
        if (token != version)
        {
            ThrowHelper.ThrowInvalidOperation("This operation's result was taken already: a ValueTask may be awaited once.");
        }

        if (Interlocked.Exchange(ref registered, 1) != 0)
        {
            ThrowHelper.ThrowInvalidOperation("The operation has a continuation already: a ValueTask may be awaited once.");
        }
    }
}
