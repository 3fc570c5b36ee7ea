using SharedMemChannels.Rings;

namespace SharedMemChannels.Channels;

/// <summary>What a prioritized channel adds to opening one: its comparer against the channel's kind.</summary>
internal static class PrioritizedChannel
{
    /// <summary>
    /// The order this process uses for the channel <paramref name="name"/> whose ring is
    /// <paramref name="kind"/>: the given comparer (checked against the stored identity when the ring is
    /// attached), <see cref="Comparer{T}.Default"/>'s when the channel is prioritized and none was given
    /// (a plain <c>Open</c>), none for the other kinds. Asking a channel of another kind to be
    /// prioritized, or a prioritized one to be plainly unbounded, is refused: an
    /// <see cref="ArgumentException"/> when options were given (they disagree with the stored ones), an
    /// <see cref="InvalidOperationException"/> for an open.
    /// </summary>
    public static PriorityOrder<T>? CheckOrder<T>(string name, RingKind kind, bool withOptions, PriorityOrder<T>? order)
    {
        bool prioritized = kind == RingKind.Prioritized;
        if (prioritized == (order is not null))
        {
            return order;
        }

        if (prioritized && !withOptions)
        {
            return PriorityOrder<T>.Default;
        }

        string exists = prioritized ? "prioritized" : kind == RingKind.Unbounded ? "unbounded (not prioritized)" : "bounded";
        string asked = order is null ? "an unbounded channel that is not prioritized" : "a prioritized channel";
        if (withOptions)
        {
            Common.ThrowHelper.ThrowArgument($"Channel '{name}' exists {exists}; the options ask for {asked}.", "options");
        }

        throw new InvalidOperationException($"Channel '{name}' is {exists}: it cannot be opened as {asked}.");
    }
}
