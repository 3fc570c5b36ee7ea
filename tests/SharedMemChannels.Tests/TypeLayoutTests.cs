using System.Runtime.InteropServices;
using SharedMemChannels.Objects;

namespace SharedMemChannels.Tests;

#pragma warning disable CS0649 // Layout specimens: their fields are never written, only measured.

/// <summary>How a type's layout is described and fingerprinted: no segment, so no backend.</summary>
public class TypeLayoutTests
{
    [Fact]
    public void Layout_fingerprints_are_structural()
    {
        Assert.Equal(TypeLayout<Point>.Info.Fingerprint, TypeLayout<OtherPoint>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<Point>.Info.Fingerprint, TypeLayout<SwappedPoint>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<Point>.Info.Fingerprint, TypeLayout<Point3>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<int>.Info.Fingerprint, TypeLayout<uint>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<ShmVector<int>>.Info.Fingerprint, TypeLayout<ShmVector<long>>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<ShmVector<int>>.Info.Fingerprint, TypeLayout<ShmString>.Info.Fingerprint);
        Assert.NotEqual(TypeLayout<Packed>.Info.Fingerprint, TypeLayout<Unpacked>.Info.Fingerprint);
        Assert.Equal("8{0:i4;4:i4;}", TypeLayout<Point>.Info.Description);
        Assert.Equal("16{0:i8;8:f8;}", TypeLayout<Reading>.Info.Description);
        Assert.Equal("24{0:i4;8:str;16:vec<f8>;}", TypeLayout<Config>.Info.Description);
        Assert.Equal("8{0:u1;4:i4;}", TypeLayout<Unpacked>.Info.Description);
        Assert.Equal("5{0:u1;1:i4;}", TypeLayout<Packed>.Info.Description);
        Assert.Contains("4:i4", TypeLayout<Generic<int>>.Info.Description, StringComparison.Ordinal);
    }

    private struct SwappedPoint
    {
        public int X;
        public uint Y;
    }

    private struct Point3
    {
        public int X;
        public int Y;
        public int Z;
    }

    private struct Unpacked
    {
        public byte A;
        public int B;
    }

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct Packed
    {
        public byte A;
        public int B;
    }

    private struct Generic<T>
        where T : unmanaged
    {
        public int Header;
        public T Value;
    }
}
