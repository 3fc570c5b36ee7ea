namespace SharedMemChannels;

/// <summary>A named object of a segment, as its directory records it.</summary>
/// <param name="Name">The object's name.</param>
/// <param name="TypeName">The name of the type it was constructed as (for people; identity is the layout).</param>
/// <param name="Size">The size of the object in bytes.</param>
/// <param name="LayoutFingerprint">The layout identity of its type.</param>
/// <param name="Handle">The object's block.</param>
public sealed record NamedObjectInfo(string Name, string TypeName, int Size, ulong LayoutFingerprint, ShmHandle Handle);
