using System.Text;
using SharedMemChannels.Common;

namespace SharedMemChannels.Serialization;

/// <summary>
/// What a serialized channel stores about its items so that writer and reader agree: the serializer's
/// <see cref="ISharedSerializer{T}.Identity"/> and the element type's name (<see cref="Type.ToString"/>:
/// namespaces and type arguments, no assembly versions). The check on open is the 64-bit fingerprint of
/// both; the texts are kept for messages and tools.
/// </summary>
internal sealed class SerializedElementIdentity
{
    public SerializedElementIdentity(string serializerIdentity, Type elementType)
    {
        if (string.IsNullOrEmpty(serializerIdentity))
        {
            throw new ArgumentException("A serializer's Identity must not be empty: it is stored with the channel and compared on open.", nameof(serializerIdentity));
        }

        SerializerIdentity = serializerIdentity;
        TypeName = elementType.ToString();
        Fingerprint = FingerprintOf(SerializerIdentity, TypeName);
    }

    public string SerializerIdentity { get; }

    public string TypeName { get; }

    /// <summary>FNV-1a 64 of the identity, a newline and the type name (UTF-8); never 0.</summary>
    public ulong Fingerprint { get; }

    public static ulong FingerprintOf(string serializerIdentity, string typeName)
    {
        ulong hash = Fnv1a.Hash64(Encoding.UTF8.GetBytes(serializerIdentity + "\n" + typeName));
        return hash == 0 ? 1 : hash;
    }

    public override string ToString() => $"{TypeName} serialized by '{SerializerIdentity}'";
}
