namespace SharedMemChannels.Common;

/// <summary>The one check of enum option values: a value outside the enum's names is refused where it is set.</summary>
internal static class EnumArgument
{
    /// <summary>Returns <paramref name="value"/>, or throws <see cref="ArgumentOutOfRangeException"/> when it is not one of <typeparamref name="T"/>'s names.</summary>
    public static T Defined<T>(T value)
        where T : struct, Enum =>
        Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"Not a defined {typeof(T).Name}.");
}
