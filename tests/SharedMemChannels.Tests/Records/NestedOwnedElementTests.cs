using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SharedMemChannels.Objects;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests.Records;

/// <summary>A part of an <see cref="Assembly"/>, declared as the test host's (same layout).</summary>
internal struct Part
{
    public int Id;
    public ShmString Label;
    public ShmVector<int> Codes;
}

/// <summary>An element whose vector's elements own storage themselves, declared as the test host's.</summary>
internal struct Assembly
{
    public int Id;
    public ShmString Name;
    public ShmVector<Part> Parts;
    public long Stamp;
}

/// <summary>One level of nesting: a string and a vector of the level below.</summary>
internal struct Wrap<TInner>
    where TInner : unmanaged
{
    public ShmString Label;
    public ShmVector<TInner> Items;
}

#pragma warning disable CS0649 // Fields never assigned: these types are only laid out, never filled.
/// <summary>A recursive type: a vector of itself has no bounded walk.</summary>
internal struct Tree
{
    public int Value;
    public ShmVector<Tree> Children;
}
#pragma warning restore CS0649

/// <summary>
/// Elements that hold vectors whose elements own storage (the C++ seed's scoped allocators): handed over,
/// read, released, dropped, destroyed with the channel and reclaimed from a killed reader, every level freed
/// exactly once; and hostile nesting (a cycle, too deep, shared storage) is damage, never a hang or a stack overflow.
/// </summary>
public sealed class NestedOwnedElementTests : SegmentTest
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(300);

    private static long Used(SharedSegment segment) => segment.GetHeapStatistics().UsedBytes;

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The test host's assembly <paramref name="n"/> (NestedRoles.Build).</summary>
    private static Assembly Make(SharedSegment segment, int n)
    {
        var assembly = new Assembly { Id = n, Name = ShmString.Create(segment, $"asm-{n}"), Stamp = n * 3L };
        for (int k = 0; k < (n % 3) + 1; k++)
        {
            assembly.Parts.Add(segment, new Part { Id = k, Label = ShmString.Create(segment, $"part-{n}-{k}"), Codes = ShmVector.Create<int>(segment, [n, k]) });
        }

        return assembly;
    }

    private static bool IsAssembly(SharedSegment segment, in Assembly a, int n)
    {
        if (a.Id != n || a.Stamp != n * 3L || !a.Name.AsSpan(segment).SequenceEqual($"asm-{n}") || a.Parts.GetCount(segment) != (n % 3) + 1)
        {
            return false;
        }

        Span<Part> parts = a.Parts.AsSpan(segment);
        for (int k = 0; k < parts.Length; k++)
        {
            if (parts[k].Id != k || !parts[k].Label.AsSpan(segment).SequenceEqual($"part-{n}-{k}") || !parts[k].Codes.AsSpan(segment).SequenceEqual([n, k]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Every block an assembly owns, at every level.</summary>
    private static List<ShmHandle> Blocks(SharedSegment segment, in Assembly a)
    {
        var blocks = new List<ShmHandle> { a.Name.Storage, a.Parts.Storage };
        foreach (Part part in a.Parts.AsSpan(segment))
        {
            blocks.Add(part.Label.Storage);
            blocks.Add(part.Codes.Storage);
        }

        return blocks;
    }

    private SharedSegment NewWarmSegment(string tag, long capacity = 1 << 20)
    {
        SharedSegment segment = NewSegment(tag, capacity: capacity);
        SharedChannel.CreateBounded<long>(segment, "warm", new SharedChannelOptions(1)).Dispose();
        return segment;
    }

    [Fact]
    public void Nested_owners_are_accepted_to_eight_levels_and_recursive_or_deeper_types_are_refused()
    {
        Assert.Equal(2, TypeLayout<Assembly>.OwnedHandleOffsets.Length);
        Assert.Equal(1, TypeLayout<Assembly>.Owned.Depth);
        Assert.Equal(1, TypeLayout<Part>.VectorNesting);
        Assert.Equal(2, TypeLayout<Assembly>.VectorNesting);
        Assert.Equal(0, TypeLayout<int>.VectorNesting);
        SharedSegment segment = NewSegment("types");
        Track(SharedChannel.CreateBounded<Assembly>(segment, "asm", new SharedChannelOptions(1)));
        Track(SharedChannel.CreateBounded<VectorOfOwned>(segment, "vec", new SharedChannelOptions(1)));
        Track(SharedChannel.CreateBounded<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<int>>>>>>>>>(segment, "eight", new SharedChannelOptions(1)));
        Assert.Equal(ContainerStorage.MaxNesting, TypeLayout<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<int>>>>>>>>>.VectorNesting);
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<Wrap<int>>>>>>>>>>(segment, "nine", new SharedChannelOptions(1)));
        Assert.Throws<ArgumentException>(() => SharedChannel.CreateBounded<Tree>(segment, "tree", new SharedChannelOptions(1)));
        Assert.Throws<ArgumentException>(() => ShmVector.Create<Tree>(segment, []));
        Assert.False(SharedChannel.Exists(segment, "nine"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_read_hands_every_level_to_the_reader_and_Release_frees_it_once(bool spsc)
    {
        SharedSegment segment = NewSegment("nested");
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(4) { SingleReader = spsc, SingleWriter = spsc }));
        long baseline = Used(segment);
        Assembly written = Make(segment, 5);
        Assert.True(channel.Writer.TryWrite(written));
        Assert.All(Blocks(segment, written), b => Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(b)));
        Assert.Throws<InvalidOperationException>(() => channel.Release(written)); // queued: the channel's
        Assert.True(channel.Reader.TryRead(out Assembly read));
        Assert.True(IsAssembly(segment, read, 5));
        List<ShmHandle> blocks = Blocks(segment, read);
        Assert.Equal(2 + (2 * 3), blocks.Count);
        Assert.All(blocks, b => Assert.Equal(ShmOwnership.Process, segment.GetOwnership(b)));
        channel.Release(read);
        Assert.Equal(baseline, Used(segment));
        Assert.All(blocks, b => Assert.ThrowsAny<InvalidOperationException>(() => segment.GetSpan(b)));
        Assert.Throws<InvalidOperationException>(() => channel.Release(read));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public async Task The_enumeration_and_the_drop_modes_free_every_level()
    {
        SharedSegment segment = NewSegment("nested");
        var dropped = new List<string>();
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(
            segment, "c", new SharedChannelOptions(3) { FullMode = BoundedChannelFullMode.DropOldest }, a => dropped.Add(a.Parts.AsSpan(segment)[0].Label.ToString(segment))));
        long baseline = Used(segment);
        for (int n = 0; n < 10; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        Assert.Equal(Enumerable.Range(0, 7).Select(n => $"part-{n}-0"), dropped); // the callback still saw them whole
        channel.Writer.Complete();
        int expected = 7;
        await foreach (Assembly a in channel.Reader.ReadAllAsync())
        {
            Assert.True(IsAssembly(segment, a, expected++));
        }

        Assert.Equal(10, expected);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Assemblies_queued_when_the_channel_is_destroyed_are_freed_at_every_level()
    {
        SharedSegment segment = NewWarmSegment("destroy");
        long baseline = Used(segment);
        SharedChannel<Assembly> channel = SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(8) { RetainUndelivered = false });
        for (int n = 0; n < 6; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        Assert.True(channel.Reader.TryRead(out Assembly first));
        channel.Release(first);
        channel.Dispose(); // the last reference: the channel goes with what it holds
        Assert.False(SharedChannel.Exists(segment, "c"));
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Writing_an_assembly_whose_part_was_freed_is_refused_and_the_rest_stays_the_writers()
    {
        SharedSegment segment = NewSegment("freed");
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(4)));
        long baseline = Used(segment);
        Assembly item = Make(segment, 2);
        Part part = item.Parts.AsSpan(segment)[1];
        part.Label.Free(segment); // a copy: the vector still names the freed block
        Assert.ThrowsAny<InvalidOperationException>(() => channel.Writer.TryWrite(item));
        Assert.Equal(0, channel.Reader.Count);
        Assert.Equal(ShmOwnership.Process, segment.GetOwnership(item.Name.Storage));
        item.Parts.GetRef(segment, 1).Label = default; // forget the freed one, then give the rest back
        channel.Release(item);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void A_vector_of_owners_frees_what_its_elements_own_when_cleared_removed_or_freed()
    {
        SharedSegment segment = NewSegment("vector");
        long baseline = Used(segment);
        ShmPtr<ShmVector<Part>> holder = segment.ConstructAnonymous<ShmVector<Part>>();
        ref ShmVector<Part> parts = ref holder.Value;
        for (int k = 0; k < 5; k++)
        {
            parts.Add(segment, new Part { Id = k, Label = ShmString.Create(segment, $"p{k}"), Codes = ShmVector.Create<int>(segment, [k]) });
        }

        long five = Used(segment);
        parts.RemoveAt(segment, 1);
        Assert.Equal(4, parts.GetCount(segment));
        Assert.Equal(["p0", "p2", "p3", "p4"], parts.AsSpan(segment).ToArray().Select(p => p.Label.ToString(segment)));
        Assert.True(Used(segment) < five);
        parts.Assign(segment, [new Part { Id = 9, Label = ShmString.Create(segment, "only") }]);
        Assert.Equal("only", parts.GetRef(segment, 0).Label.ToString(segment));
        parts.Clear(segment);
        Assert.Equal(0, parts.GetCount(segment));
        parts.Add(segment, new Part { Label = ShmString.Create(segment, "last"), Codes = ShmVector.Create<int>(segment, [1, 2, 3]) });
        parts.Free(segment);
        Assert.True(parts.IsNull);
        segment.Free(holder.Handle);
        Assert.Equal(baseline, Used(segment));
    }

    [Fact]
    public void Assemblies_held_by_a_killed_reader_are_reclaimed_at_every_level()
    {
        SharedSegment segment = NewSegment("xkill", capacity: 4 << 20);
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(16)));
        long baseline = Used(segment);
        for (int n = 0; n < 10; n++)
        {
            Assert.True(channel.Writer.TryWrite(Make(segment, n)));
        }

        using ChildProcess child = HostOnBackend("nested-hold", segment.Name, "--channel", "c", "--count", "10");
        Assert.Equal("10", Field(child.WaitForLine("holding", Generous), "n"));
        Assert.True(Used(segment) > baseline);
        child.Kill();
        WaitUntil(() => segment.ReclaimDeadProcesses() >= 0 && Used(segment) == baseline, "the dead reader's assemblies reclaimed");
    }

    /// <summary>The proof, one level deeper: 100,000 assemblies, each with parts that own a string and a vector, written by a child and read here with await foreach, leave nothing behind.</summary>
    [Fact]
    public async Task A_hundred_thousand_assemblies_with_nested_owners_across_processes_leave_the_heap_at_its_baseline()
    {
        SharedSegment segment = NewSegment("nested", capacity: 4 << 20, max: 64 << 20);
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(segment, "hw", new SharedChannelOptions(256)));
        long baseline = Used(segment);
        const int count = 100_000;
        using ChildProcess writer = HostOnBackend("nested-writer", segment.Name, "--channel", "hw", "--count", Str(count));
        int n = 0;
        long wrong = 0;
        using var cts = new CancellationTokenSource(Generous);
        await foreach (Assembly a in channel.Reader.ReadAllAsync(cts.Token))
        {
            if (!IsAssembly(segment, a, n))
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

    [Fact]
    public void A_cycle_in_nested_storage_is_an_InvalidSegmentException_and_destruction_still_ends()
    {
        SharedSegment segment = NewWarmSegment("cycle");
        SharedChannel<Assembly> channel = SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(4) { RetainUndelivered = false });
        Assembly looped = Make(segment, 1);
        // The first part's vector of codes now names the vector of parts it sits in.
        Unsafe.As<ShmVector<int>, ulong>(ref looped.Parts.GetRef(segment, 0).Codes) = looped.Parts.Storage.Value;
        Assert.Throws<InvalidSegmentException>(() => channel.Writer.TryWrite(looped));
        Assert.Equal(0, channel.Reader.Count);
        Assert.Throws<InvalidSegmentException>(() => looped.Parts.Free(segment));

        // Made after the write, in shared memory: the reader meets it.
        Assembly good = Make(segment, 2);
        Assert.True(channel.Writer.TryWrite(good));
        Unsafe.As<ShmVector<int>, ulong>(ref good.Parts.GetRef(segment, 0).Codes) = good.Parts.Storage.Value;
        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));

        // And the destruction of a channel holding one: it ends, leaving the looped part alone.
        Assembly queued = Make(segment, 3);
        Assert.True(channel.Writer.TryWrite(queued));
        Unsafe.As<ShmVector<int>, ulong>(ref queued.Parts.GetRef(segment, 0).Codes) = queued.Parts.Storage.Value;
        channel.Dispose();
        Assert.False(SharedChannel.Exists(segment, "c"));
        segment.ValidateHeap();
    }

    [Fact]
    public void A_nesting_deeper_than_stored_or_allowed_is_an_InvalidSegmentException()
    {
        SharedSegment segment = NewSegment("deep");
        SharedChannel<Assembly> channel = Track(SharedChannel.CreateBounded<Assembly>(segment, "c", new SharedChannelOptions(4)));
        Assembly item = Make(segment, 4);
        Assert.True(channel.Writer.TryWrite(item));
        long payload = segment.Attachment.Heap.GetPayloadOffset(item.Parts.Storage, out _, out _);
        ref ContainerStorage.Header header = ref segment.Attachment.Memory.Ref<ContainerStorage.Header>(payload);
        header.Nesting = ContainerStorage.MaxNesting + 1;
        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));

        Assembly other = Make(segment, 5);
        Assert.True(channel.Writer.TryWrite(other));
        payload = segment.Attachment.Heap.GetPayloadOffset(other.Parts.Storage, out _, out _);
        segment.Attachment.Memory.Int32(ContainerStorage.TableOffset(payload)) = 1 << 20; // an owned handle beyond the element
        Assert.Throws<InvalidSegmentException>(() => channel.Reader.TryRead(out _));
    }

    [Fact]
    public void Storage_shared_between_elements_is_refused_within_bounded_time()
    {
        SharedSegment segment = NewSegment("shared", capacity: 1 << 20, max: 8 << 20);
        SharedChannel<Wrap<Assembly>> channel = Track(SharedChannel.CreateBounded<Wrap<Assembly>>(segment, "c", new SharedChannelOptions(4)));

        // 600 assemblies whose parts are all the same 600 parts: a tree would need 360,000 blocks, more than
        // the segment holds; walked naively, the shared parts would be visited over and over.
        var parts = default(ShmVector<Part>);
        ShmString label = ShmString.Create(segment, "shared");
        for (int k = 0; k < 600; k++)
        {
            parts.Add(segment, new Part { Id = k, Label = label });
        }

        var outer = new Wrap<Assembly> { Label = ShmString.Create(segment, "outer") };
        for (int n = 0; n < 600; n++)
        {
            outer.Items.Add(segment, new Assembly { Id = n, Parts = parts });
        }

        Assert.True(OwnedStorage.Budget(segment.Attachment) < 600 * 600);
        Assert.Throws<InvalidSegmentException>(() => channel.Writer.TryWrite(outer));
        Assert.Equal(0, channel.Reader.Count);
    }
}
