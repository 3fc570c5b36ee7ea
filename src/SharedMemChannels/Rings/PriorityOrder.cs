using System.Text;
using SharedMemChannels.Common;

namespace SharedMemChannels.Rings;

/// <summary>
/// The order of a prioritized channel in one process: the comparer this process sorts with, and the
/// identity stored with the channel so that every process is checked to sort the same way.
/// </summary>
internal sealed class PriorityOrder<T>
{
    public PriorityOrder(IComparer<T> comparer, string identity)
    {
        Comparer = comparer;
        Identity = identity;
        ulong fingerprint = Fnv1a.Hash64(Encoding.UTF8.GetBytes(identity));
        Fingerprint = fingerprint == 0 ? 1 : fingerprint;
    }

    /// <summary>The identity stored for <see cref="Comparer{T}.Default"/> (a null comparer).</summary>
    public const string DefaultIdentity = "default";

    /// <summary><see cref="Comparer{T}.Default"/>'s order.</summary>
    public static PriorityOrder<T> Default { get; } = new(Comparer<T>.Default, DefaultIdentity);

    /// <summary>Sorts the items: the smallest is read first.</summary>
    public IComparer<T> Comparer { get; }

    /// <summary>What the comparer is, as stored with the channel.</summary>
    public string Identity { get; }

    /// <summary>FNV-1a 64 of the identity's UTF-8 (never 0).</summary>
    public ulong Fingerprint { get; }
}
