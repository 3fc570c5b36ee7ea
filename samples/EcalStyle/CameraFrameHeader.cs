using System.Runtime.InteropServices;

namespace SharedMemChannels.Samples;

/// <summary>
/// The message every frame starts with: a small unmanaged struct published as it is (eCAL would send a
/// protobuf or a raw struct through <c>CPublisher::Send</c>). Most messages are this header alone; a full
/// frame is this header followed by <see cref="PixelBytes"/> bytes of pixels.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CameraFrameHeader
{
    /// <summary>The frame's number, the same as the topic message's id in this sample.</summary>
    public long Sequence;

    /// <summary>When the camera took it (UTC ticks).</summary>
    public long TimestampUtcTicks;

    public int Width;
    public int Height;
    public int ExposureMicroseconds;

    /// <summary>Pixel bytes after the header (0 for a header-only message).</summary>
    public int PixelBytes;

    /// <summary>The header's size in bytes (32).</summary>
    public static int Size => Marshal.SizeOf<CameraFrameHeader>();

    /// <summary>The pixel at <paramref name="index"/> of frame <paramref name="sequence"/>: a pattern every subscriber checks.</summary>
    public static byte Pixel(long sequence, int index) => (byte)((sequence * 7) + index);

    public static CameraFrameHeader For(long sequence, int pixelBytes) => new()
    {
        Sequence = sequence,
        TimestampUtcTicks = DateTime.UtcNow.Ticks,
        Width = pixelBytes == 0 ? 0 : 128,
        Height = pixelBytes == 0 ? 0 : pixelBytes / 128 / 4,
        ExposureMicroseconds = 1000 + (int)(sequence % 100),
        PixelBytes = pixelBytes,
    };

    /// <summary>Fills <paramref name="pixels"/> with frame <paramref name="sequence"/>'s pattern.</summary>
    public static void FillPixels(long sequence, Span<byte> pixels)
    {
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = Pixel(sequence, i);
        }
    }

    /// <summary>Whether <paramref name="pixels"/> hold frame <paramref name="sequence"/>'s pattern.</summary>
    public static bool PixelsIntact(long sequence, ReadOnlySpan<byte> pixels)
    {
        for (int i = 0; i < pixels.Length; i++)
        {
            if (pixels[i] != Pixel(sequence, i))
            {
                return false;
            }
        }

        return true;
    }
}
