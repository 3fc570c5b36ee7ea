using System.Text;

namespace SharedMemChannels.Common;

/// <summary>
/// The FNV-1a hash, in its 32-bit and 64-bit forms: the one hash the library stores in shared memory
/// (System V keys, directory buckets, type fingerprints, the header checksum). Written once here
/// because every stored value must be computed the same way by every process and every version.
/// </summary>
internal static class Fnv1a
{
    public const uint Offset32 = 2166136261;
    public const ulong Offset64 = 14695981039346656037UL;
    private const uint Prime32 = 16777619;
    private const ulong Prime64 = 1099511628211UL;

    /// <summary>The 32-bit hash of <paramref name="bytes"/>, continuing from <paramref name="hash"/>.</summary>
    public static uint Hash32(ReadOnlySpan<byte> bytes, uint hash = Offset32)
    {
        foreach (byte b in bytes)
        {
            hash ^= b;
            hash *= Prime32;
        }

        return hash;
    }

    /// <summary>The 64-bit hash of <paramref name="bytes"/>, continuing from <paramref name="hash"/>.</summary>
    public static ulong Hash64(ReadOnlySpan<byte> bytes, ulong hash = Offset64)
    {
        foreach (byte b in bytes)
        {
            hash ^= b;
            hash *= Prime64;
        }

        return hash;
    }

    /// <summary>The 32-bit hash of a string's UTF-8 bytes.</summary>
    public static uint Hash32(string text) => Hash32(Encoding.UTF8.GetBytes(text));

    /// <summary>The 64-bit hash of a string's UTF-8 bytes.</summary>
    public static ulong Hash64(string text) => Hash64(Encoding.UTF8.GetBytes(text));
}
