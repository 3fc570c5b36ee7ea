using System.Runtime.InteropServices;

namespace SharedMemChannels.Samples;

/// <summary>
/// The seed's <c>IPCHandleData</c>: an id, a 64-bit id and a name. Boost needs an allocator-aware
/// <c>basic_string</c> for the name; here the name is a <see cref="ShmString"/>, an 8-byte handle of
/// characters in the segment's heap, so the whole object is an unmanaged struct that lives in the
/// segment as it is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IpcHandleData
{
    public int Id;
    public long Id64;
    public ShmString Name;

    /// <summary>The 64-bit id the producer stores for <paramref name="id"/>: it uses the upper half, so a truncation shows.</summary>
    public static long Id64For(int id) => ((long)id << 32) | (uint)id;

    /// <summary>The name the producer stores for <paramref name="id"/>.</summary>
    public static string NameFor(int id) => $"name-{id}";
}
