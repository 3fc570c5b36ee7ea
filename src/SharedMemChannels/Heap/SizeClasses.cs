namespace SharedMemChannels.Heap;

/// <summary>
/// The block sizes the per-thread caches hold: 16-byte steps up to 256 bytes, then four classes per
/// doubling up to <see cref="MaxBlockSize"/>. Sizes are whole blocks, header included.
/// </summary>
internal static class SizeClasses
{
    public const int MaxBlockSize = 2048;

    /// <summary>Bytes a thread may keep cached per class; the count per class follows from it.</summary>
    private const int BytesPerClass = 4096;

    private static readonly int[] Sizes = Build();
    private static readonly int[] Capacities = [.. Sizes.Select(size => Math.Clamp(BytesPerClass / size, 2, 64))];
    private static readonly byte[] ClassOfUnits = BuildLookup();

    public static int Count => Sizes.Length;

    public static int BlockSize(int sizeClass) => Sizes[sizeClass];

    /// <summary>How many blocks of the class a thread keeps at most.</summary>
    public static int Capacity(int sizeClass) => Capacities[sizeClass];

    /// <summary>The smallest class whose blocks hold <paramref name="blockSize"/> bytes; the caller ensures blockSize ≤ <see cref="MaxBlockSize"/>.</summary>
    public static int ForAllocation(int blockSize) => ClassOfUnits[(blockSize + 15) >> 4];

    /// <summary>The largest class a freed block of <paramref name="blockSize"/> bytes can serve, or -1 when it is too big to cache.</summary>
    public static int ForFreedBlock(long blockSize)
    {
        if (blockSize > MaxBlockSize || blockSize < Sizes[0])
        {
            return -1;
        }

        int c = ClassOfUnits[blockSize >> 4];
        return Sizes[c] == blockSize ? c : c - 1;
    }

    private static int[] Build()
    {
        var sizes = new List<int>();
        for (int s = BlockHeader.MinBlockSize; s <= 256; s += 16)
        {
            sizes.Add(s);
        }

        for (int s = 320; s <= MaxBlockSize; s += Math.Max(64, HighestPowerOfTwo(s) / 4))
        {
            sizes.Add(s);
        }

        return [.. sizes];
    }

    private static int HighestPowerOfTwo(int value) => 1 << (31 - int.LeadingZeroCount(value));

    private static byte[] BuildLookup()
    {
        var lookup = new byte[(MaxBlockSize >> 4) + 1];
        int c = 0;
        for (int units = 0; units < lookup.Length; units++)
        {
            while (Sizes[c] < units << 4)
            {
                c++;
            }

            lookup[units] = (byte)c;
        }

        return lookup;
    }
}
