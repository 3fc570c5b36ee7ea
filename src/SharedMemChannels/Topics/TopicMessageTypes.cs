using SharedMemChannels.Objects;
using SharedMemChannels.Serialization;

namespace SharedMemChannels.Topics;

/// <summary>
/// The identities typed topic ends claim (<see cref="TopicCore.ClaimMessageType"/>): an unmanaged type's
/// structural layout fingerprint, or a serializer's identity with the type's name (as a serialized channel
/// stores them). Byte messages have none.
/// </summary>
internal static class TopicMessageTypes
{
    public static ulong UnmanagedFingerprint<T>()
        where T : unmanaged
    {
        ulong fingerprint = TypeLayout<T>.Info.Fingerprint;
        return fingerprint == 0 ? 1 : fingerprint;
    }

    /// <summary>Claims (or checks) unmanaged <typeparamref name="T"/> as the topic's message type; returns its fingerprint.</summary>
    public static ulong ClaimUnmanaged<T>(TopicCore core)
        where T : unmanaged
    {
        TypeLayoutInfo info = TypeLayout<T>.Info;
        ulong fingerprint = UnmanagedFingerprint<T>();
        core.ClaimMessageType(fingerprint, $"{info.DisplayName} (unmanaged, {info.Size} bytes)");
        return fingerprint;
    }

    /// <summary>Claims (or checks) <typeparamref name="T"/> serialized by <paramref name="serializer"/> as the topic's message type; returns its fingerprint.</summary>
    public static ulong ClaimSerialized<T>(TopicCore core, ISharedSerializer<T> serializer)
    {
        var identity = new SerializedElementIdentity(serializer.Identity, typeof(T));
        core.ClaimMessageType(identity.Fingerprint, identity.ToString());
        return identity.Fingerprint;
    }
}
