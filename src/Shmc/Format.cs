using System.Globalization;
using SharedMemChannels;

namespace Shmc;

/// <summary>Formats for people.</summary>
internal static class Format
{
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {units[unit]}");
    }

    /// <summary>A count or a counter, with thousands separators ("1,234,567"), for people to read at a glance.</summary>
    public static string Number(long value) => value.ToString("#,0", CultureInfo.InvariantCulture);

    /// <summary>An identifier (a pid, a slot, a uid, a generation, a version): digits only, as other tools print it.</summary>
    public static string Id(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset? time) => time is { } t ? t.ToString("u", CultureInfo.InvariantCulture) : "-";

    public static string Mode(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8).PadLeft(3, '0');

    public static string Backend(SharedMemoryBackend backend) => backend == SharedMemoryBackend.Posix ? "posix" : "sysv";
}
