namespace SharedMemChannels;

/// <summary>Makes <see cref="ISharedComparer{T}"/>s: comparers named for prioritized shared channels.</summary>
public static class SharedComparer
{
    /// <summary>A comparer that orders with <paramref name="comparison"/> and is identified as <paramref name="identity"/>.</summary>
    /// <typeparam name="T">The items' type.</typeparam>
    /// <param name="identity">The order's name, stored with the channel (see <see cref="ISharedComparer{T}.Identity"/>).</param>
    /// <param name="comparison">Negative when the first item is read before the second, 0 for ties, positive otherwise.</param>
    /// <returns>The comparer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="identity"/> or <paramref name="comparison"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="identity"/> is empty, or is <c>default</c>.</exception>
    public static ISharedComparer<T> Create<T>(string identity, Comparison<T> comparison)
    {
        ValidateIdentity(identity, nameof(identity));
        ArgumentNullException.ThrowIfNull(comparison);
        return new ComparisonComparer<T>(identity, comparison);
    }

    internal static void ValidateIdentity(string? identity, string paramName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(identity, paramName);
        if (identity == Rings.PriorityOrder<int>.DefaultIdentity)
        {
            throw new ArgumentException($"'{identity}' names Comparer<T>.Default; give the comparer a name of its own.", paramName);
        }
    }

    private sealed class ComparisonComparer<T>(string identity, Comparison<T> comparison) : ISharedComparer<T>
    {
        public string Identity { get; } = identity;

        public int Compare(T? x, T? y) => comparison(x!, y!);
    }
}
