using System.Runtime.InteropServices;

namespace SharedMemChannels.Samples;

/// <summary>
/// The seed's simple element: a command with no dynamic storage (its <c>CreatePtr</c> at line 558 calls the
/// constructor with no allocator). Any unmanaged struct is written into the channel as it is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct HardwareInfoGetCmd
{
    public int RequestId;
    public int DeviceIndex;
}

/// <summary>
/// One feature record of the seed's <c>Vector&lt;FeatureInfo&gt;</c>, stored in the vector's storage block,
/// with a name of its own in the segment: a vector of elements that own storage themselves (the seed's
/// scoped allocator reaches into the vector's elements). The vector's storage records which fields its
/// elements own, so the channel frees each name with the vector, exactly once.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FeatureInfo
{
    public int FeatureId;
    public int Version;
    public long Flags;
    public int Enabled;
    public ShmString Name;
}

/// <summary>
/// The seed's complex element, <c>HardwareInfoGetRet</c>: strings and a vector whose storage lives in the
/// channel's segment (the C++ version needs the pool's shared allocator typed into its <c>String</c> and
/// <c>Vector</c>, HardwareInfoGetCmd.h lines 35-36). Here the element is an unmanaged struct of handles:
/// its fixed part travels through the ring, the text and the features live in the segment's heap, and
/// the channel knows which fields own storage, so it frees them exactly once (when the reader is done
/// with the element, when a full mode drops it, or when the channel is destroyed with it queued).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct HardwareInfoGetRet
{
    public int RequestId;
    public int Status;
    public long MemoryBytes;
    public ShmString Vendor;
    public ShmString Model;
    public ShmString SerialNumber;
    public ShmString FirmwareVersion;
    public ShmVector<FeatureInfo> Features;
}
