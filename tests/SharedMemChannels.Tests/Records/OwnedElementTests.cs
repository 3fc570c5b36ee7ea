using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Objects;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>An element that owns heap storage, declared as the test host's OwnedItem (same layout).</summary>
internal struct OwnedItem
{
    public int Id;
    public ShmString Name;
    public ShmVector<int> Values;
    public long Stamp;
}

/// <summary>Owned handles in nested structs and inline arrays.</summary>
internal struct Nested
{
    public OwnedItem Inner;
    public ShmString Outer;
    public Four Strings;
}

[InlineArray(4)]
internal struct Four
{
    private ShmString _element;
}

#pragma warning disable CS0649 // Fields never assigned: these types are only laid out, never filled.
internal struct TooMany
{
    public Four A;
    public Four B;
    public Four C;
    public Four D;
    public ShmString E;
}

internal struct VectorOfOwned
{
    public ShmVector<OwnedItem> Items;
}
#pragma warning restore CS0649

/// <summary>
/// <see cref="SharedChannel{T}"/> whose elements hold <see cref="ShmString"/> / <see cref="ShmVector{T}"/>
/// fields: the storage is handed to the channel by a write, to the reader by a read, and freed exactly once
/// (Release, the enumeration, a drop, the channel's destruction), across processes too.
/// </summary>
public sealed class OwnedElementTests : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(300);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    private static OwnedItem Make(SharedSegment segment, int n) => new()
    {
        Id = n,
        Name = ShmString.Create(segment, $"item-{n}"),
        Values = ShmVector.Create<int>(segment, Enumerable.Range(n, (n % 7) + 1).ToArray()),
        Stamp = n * 3L,
    };

    private static void AssertItem(SharedSegment segment, OwnedItem item, int n)
    {
        Assert.Equal(n, item.Id);
        Assert.Equal($"item-{n}", item.Name.ToString(segment));
        Assert.Equal(Enumerable.Range(n, (n % 7) + 1).ToArray(), item.Values.AsSpan(segment).ToArray());
        Assert.Equal(n * 3L, item.Stamp);
    }

    /// <summary>A segment whose directory table exists (made by a first channel), so that removing a channel brings the used bytes back.</summary>
    private SharedSegment NewWarmSegment(string tag, long capacity = 1 << 20)
    {
        SharedSegment segment = NewSegment(tag, capacity: capacity);
        SharedChannel.CreateBounded<long>(segment, "warm", new SharedChannelOptions(1)).Dispose();
        Assert.False(SharedChannel.Exists(segment, "warm")); // the last reference went with it
        return segment;
    }

    [Fact]
    public void The_owned_handles_of_a_type_are_found_nested_structs_and_inline_arrays_included()
    {
        Assert.Equal(2, TypeLayout<OwnedItem>.OwnedHandleOffsets.Length);
        Assert.Equal(2 + 1 + 4, TypeLayout<Nested>.OwnedHandleOffsets.Length);
        Assert.Empty(TypeLayout<long>.OwnedHandleOffsets);
        Assert.Empty(TypeLayout<ShmHandle>.OwnedHandleOffsets);
        SharedSegment segment = NewSegment("types");
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded<TooMany>(segment, "many", new SharedChannelOptions(1)));
        Assert.Single(TypeLayout<VectorOfOwned>.OwnedHandleOffsets); // a vector of owners: accepted (NestedOwnedElementTests)
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_read_hands_the_storage_to_the_reader_and_Release_frees_it_once(bool spsc)
    {
        SharedSegment segment = NewSegment("owned");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(4) { SingleReader = spsc, SingleWriter = spsc }));
        long baseline = Used(segment);
        OwnedItem written = Make(segment, 5);
        Assert.True(channel.Writer.TryWrite(written));
        Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(written.Name.Storage));
        Assert.Throws<InvalidOperationException>(() => channel.Release(written)); // queued: the channel's, not ours
        Assert.True(channel.Reader.TryRead(out OwnedItem read));
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(read.Name.Storage));
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(read.Values.Storage));
        AssertItem(segment, read, 5);
        channel.Release(read);
        Assert.Equal(baseline, Used(segment));
        Assert.Throws<InvalidOperationException>(() => channel.Release(read));
    }

    [Fact]
    public async Task The_enumeration_releases_each_element_as_it_moves_on()
    {
        SharedSegment segment = NewSegment("owned");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(64)));
        long baseline = Used(segment);
        for (int n = 0; n < 50; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        channel.Writer.Complete();
        int count = 0;
        await foreach (OwnedItem item in channel.Reader.ReadAllAsync())
        {
            AssertItem(segment, item, count);
            if (count == 10)
            {
                channel.Release(item); // releasing in the body as well is harmless
            }

            count++;
        }

        Assert.Equal(50, count);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task Breaking_out_of_the_enumeration_releases_the_current_element()
    {
        SharedSegment segment = NewSegment("owned");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(8)));
        long baseline = Used(segment);
        Assert.True(channel.Writer.TryWrite(Make(segment, 1)));
        Assert.True(channel.Writer.TryWrite(Make(segment, 2)));
        await foreach (OwnedItem item in channel.Reader.ReadAllAsync())
        {
            AssertItem(segment, item, 1);
            break;
        }

        Assert.True(channel.Reader.TryRead(out OwnedItem second));
        AssertItem(segment, second, 2);
        channel.Release(second);
        Assert.Equal(baseline, Used(segment));
    }

    [Theory]
    [InlineData(BoundedChannelFullMode.DropOldest, false)]
    [InlineData(BoundedChannelFullMode.DropNewest, false)]
    [InlineData(BoundedChannelFullMode.DropWrite, false)]
    [InlineData(BoundedChannelFullMode.DropWrite, true)]
    public void Drop_modes_free_dropped_elements_after_the_callback_saw_them(BoundedChannelFullMode mode, bool spsc)
    {
        SharedSegment segment = NewSegment("drop");
        var seen = new List<string>();
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(
            segment, "c", new SharedChannelOptions(2) { FullMode = mode, SingleReader = spsc, SingleWriter = spsc }, item => seen.Add(item.Name.ToString(segment))));
        long baseline = Used(segment);
        for (int n = 0; n < 6; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        Assert.Equal(4, seen.Count);
        while (channel.Reader.TryRead(out OwnedItem item))
        {
            channel.Release(item);
        }

        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Elements_queued_when_the_channel_is_destroyed_are_freed()
    {
        SharedSegment segment = NewWarmSegment("destroy");
        long baseline = Used(segment);
        SharedChannel<Nested> channel = SharedChannel.CreateBounded<Nested>(segment, "c", new SharedChannelOptions(8) { RetainUndelivered = false });
        for (int n = 0; n < 5; n++)
        {
            var item = new Nested { Inner = Make(segment, n), Outer = ShmString.Create(segment, "outer") };
            item.Strings[0] = ShmString.Create(segment, "a");
            item.Strings[3] = ShmString.Create(segment, "d");
            Assert.True(channel.Writer.TryWrite(item));
        }

        Assert.True(channel.Reader.TryRead(out Nested first));
        channel.Release(first);
        channel.Dispose(); // the last reference: the channel goes with what it holds
        Assert.False(SharedChannel.Remove(segment, "c"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void An_element_the_channel_refuses_stays_with_the_writer_who_may_release_it()
    {
        SharedSegment segment = NewSegment("refused");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(1)));
        long baseline = Used(segment);
        Assert.True(channel.Writer.TryWrite(Make(segment, 1)));
        OwnedItem refused = Make(segment, 2);
        Assert.False(channel.Writer.TryWrite(refused));
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(refused.Name.Storage));
        channel.Release(refused);
        Assert.True(channel.Reader.TryRead(out OwnedItem read));
        channel.Release(read);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Writing_an_element_whose_storage_was_freed_is_refused()
    {
        SharedSegment segment = NewSegment("freed");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(4)));
        OwnedItem item = Make(segment, 1);
        OwnedItem copy = item;
        item.Name.Free(segment);
        Assert.ThrowsAny<InvalidOperationException>(() => channel.Writer.TryWrite(copy));
        Assert.Equal(0, channel.Reader.Count);
    }

    [Fact]
    public void A_damaged_owned_handle_in_the_ring_is_an_InvalidSegmentException()
    {
        SharedSegment segment = NewSegment("damage");
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(4) { SingleReader = true, SingleWriter = true }));
        Assert.True(channel.Writer.TryWrite(Make(segment, 1)));
        ref OwnedItem slot = ref segment.Attachment.Memory.Ref<OwnedItem>(channel.Core.Header.SlotAt(0));
        slot.Name = default;
        Unsafe.As<ShmString, ulong>(ref slot.Name) = 0x1234_5678_9ABC;
        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));
    }

    [Fact]
    public void Elements_held_by_a_killed_reader_are_reclaimed()
    {
        SharedSegment segment = NewSegment("xkill", capacity: 4 << 20);
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(16)));
        long baseline = Used(segment);
        for (int n = 0; n < 10; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        using ChildProcess child = HostOnBackend("owned-hold", segment.Name, "--channel", "c", "--count", "10");
        Assert.Equal("10", Field(child.WaitForLine("holding", Generous), "n"));
        Assert.True(Used(segment) > baseline);
        child.Kill();
        WaitUntil(() => segment.ReclaimDeadProcesses() >= 0 && Used(segment) == baseline, "the dead reader's elements reclaimed");
    }

    [Fact]
    public async Task A_writer_killed_holding_elements_it_built_for_itself_leaks_nothing()
    {
        SharedSegment segment = NewSegment("xwkill", capacity: 4 << 20);
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "c", new SharedChannelOptions(64)));
        long baseline = Used(segment);
        using ChildProcess writer = HostOnBackend("owned-writer", segment.Name, "--channel", "c", "--count", "20", "--process-owned", "--build-and-hold", "5");
        Assert.Equal("5", Field(writer.WaitForLine("holding", Generous), "n"));
        writer.Kill();
        segment.ReclaimDeadProcesses();
        int n = 0;
        await foreach (OwnedItem item in channel.Reader.ReadAllAsync())
        {
            AssertItem(segment, item, n++);
        }

        Assert.Equal(20, n);
        Assert.Equal(baseline, Used(segment));
    }

    /// <summary>The proof: 100,000 elements holding a string and a vector, written by a child and read here with await foreach, leave nothing behind.</summary>
    [Fact]
    public async Task A_hundred_thousand_elements_with_a_string_and_a_vector_across_processes_leave_the_heap_at_its_baseline()
    {
        SharedSegment segment = NewSegment("key", capacity: 4 << 20, max: 64 << 20);
        SharedChannel<OwnedItem> channel = Track(SharedChannel.CreateBounded<OwnedItem>(segment, "hw", new SharedChannelOptions(256)));
        long baseline = Used(segment);
        const int count = 100_000;
        using ChildProcess writer = HostOnBackend("owned-writer", segment.Name, "--channel", "hw", "--count", Str(count));
        int n = 0;
        long wrong = 0;
        using var cts = new CancellationTokenSource(Generous);
        await foreach (OwnedItem item in channel.Reader.ReadAllAsync(cts.Token))
        {
            if (item.Id != n || item.Stamp != n * 3L || !item.Name.AsSpan(segment).SequenceEqual($"item-{n}") ||
                item.Values.GetCount(segment) != (n % 7) + 1 || item.Values.AsSpan(segment)[0] != n)
            {
                wrong++;
            }

            n++;
        }

        Assert.Equal(count, n);
        Assert.Equal(0, wrong);
        writer.WaitForLine("done", Generous);
        Assert.Equal(0, writer.Finish(Generous));
        Assert.Equal(baseline, Used(segment));
    }
}
