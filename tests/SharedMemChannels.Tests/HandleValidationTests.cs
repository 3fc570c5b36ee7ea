using SharedMemChannels.Tests.Infrastructure;
using Xunit;

namespace SharedMemChannels.Tests;

/// <summary>
/// A handle is the caller's argument: a forged or foreign one is an <see cref="ArgumentException"/>
/// everywhere, never taken for a damaged segment (<see cref="InvalidSegmentException"/>).
/// </summary>
public sealed class HandleValidationTests : SegmentTest
{
    public static TheoryData<string> Operations => ["GetSpan", "Free", "SetOwnership", "GetOwnership", "GetPtr"];

    [Theory]
    [MemberData(nameof(Operations))]
    public void A_handle_beyond_the_capacity_but_within_the_maximum_is_a_bad_argument(string operation)
    {
        SharedSegment segment = NewSegment(capacity: 1 << 20, max: 64 << 20);
        Assert.True(segment.Capacity < segment.MaxCapacity);

        // Forged: an offset between Capacity and MaxCapacity (nothing is mapped or allocated there).
        ShmHandle forged = Forge(segment.Capacity + (4 << 20), generation: 1);
        Assert.Throws<ArgumentException>(() => Apply(segment, operation, forged));

        // Beyond the maximum, and in the header area: the same exception.
        Assert.Throws<ArgumentException>(() => Apply(segment, operation, Forge(segment.MaxCapacity + 4096, 1)));
        Assert.Throws<ArgumentException>(() => Apply(segment, operation, Forge(64, 1)));

        // The segment is unharmed and did not grow for it.
        Assert.Equal(1 << 20, segment.Capacity);
        segment.ValidateHeap();
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public void A_handle_into_the_middle_of_a_block_is_a_bad_argument(string operation)
    {
        SharedSegment segment = NewSegment();
        ShmHandle block = segment.Allocate(8192);
        long inside = ((long)(block.Value >> 24) << 4) + 1024;
        Assert.Throws<ArgumentException>(() => Apply(segment, operation, Forge(inside, 1)));
        Assert.Equal(8192, segment.GetSpan(block).Length);
        segment.ValidateHeap();
    }

    private static ShmHandle Forge(long offset, uint generation) =>
        ShmHandle.FromValue(((ulong)offset >> 4 << 24) | generation);

    private static void Apply(SharedSegment segment, string operation, ShmHandle handle)
    {
        switch (operation)
        {
            case "GetSpan":
                _ = segment.GetSpan(handle).Length;
                break;
            case "Free":
                segment.Free(handle);
                break;
            case "SetOwnership":
                segment.SetOwnership(handle, ShmOwnership.Segment);
                break;
            case "GetOwnership":
                _ = segment.GetOwnership(handle);
                break;
            case "GetPtr":
                _ = segment.GetPtr<long>(handle).Length;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(operation), operation, null);
        }
    }
}
