using System.Globalization;
using System.Runtime.InteropServices;
using SharedMemChannels.Objects;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

#pragma warning disable CS0649 // Layout specimens: their fields are never written, only measured.

internal struct Point
{
    public int X;
    public int Y;
}

internal struct Reading
{
    public long Timestamp;
    public double Value;
}

internal struct Config
{
    public int Version;
    public ShmString Title;
    public ShmVector<double> Gains;
}

internal struct Counter
{
    public int Magic;
    public int Count;
}

internal unsafe struct WithPointer
{
    public int* Target;
}

/// <summary>Named and anonymous objects: construct, find, destroy, type checks, races between processes.</summary>
public class NamedObjectTests : SegmentTest
{
    [Fact]
    public void Construct_find_and_destroy()
    {
        SharedSegment segment = NewSegment("obj");
        ShmPtr<Point> point = segment.Construct("origin", new Point { X = 3, Y = 4 });
        Assert.Equal(3, point.Value.X);
        point.Value.Y = 40;

        Assert.True(segment.TryFind("origin", out ShmPtr<Point> found));
        Assert.Equal(40, found.Value.Y);
        Assert.Equal(point.Handle, found.Handle);
        Assert.False(segment.TryFind<Point>("nowhere", out ShmPtr<Point> missing));
        Assert.True(missing.IsNull);
        SharedSegment empty = NewSegment("obj");
        long before = empty.GetHeapStatistics().UsedBytes;
        Assert.False(empty.TryFind<Point>("nothing", out _));
        Assert.Equal(before, empty.GetHeapStatistics().UsedBytes); // finding created no directory

        Assert.Throws<InvalidOperationException>(() => segment.Construct<Point>("origin"));

        Assert.True(segment.Destroy("origin"));
        Assert.False(segment.Destroy("origin"));
        Assert.False(segment.TryFind<Point>("origin", out _));
        Assert.Throws<InvalidOperationException>(() => segment.GetSpan(point.Handle)); // its block was freed
        segment.ValidateHeap();
    }

    [Fact]
    public void Construct_zero_initializes_and_FindOrConstruct_says_which()
    {
        SharedSegment segment = NewSegment("obj");
        ShmPtr<Reading> first = segment.FindOrConstruct("r", new Reading { Value = 2.5 }, out bool created);
        Assert.True(created);
        Assert.Equal(2.5, first.Value.Value);
        ShmPtr<Reading> second = segment.FindOrConstruct("r", new Reading { Value = 9 }, out created);
        Assert.False(created);
        Assert.Equal(2.5, second.Value.Value); // the existing object, untouched
        Assert.Equal(0L, segment.Construct<Reading>("zero").Value.Timestamp);
    }

    [Fact]
    public void Finding_as_another_type_is_an_invalid_cast()
    {
        SharedSegment segment = NewSegment("obj");
        segment.Construct<Point>("p");
        InvalidCastException e = Assert.Throws<InvalidCastException>(() => segment.TryFind<Reading>("p", out _));
        Assert.Contains("Point", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidCastException>(() => segment.TryFind<long>("p", out _));
        Assert.Throws<InvalidCastException>(() => segment.FindOrConstruct<int>("p"));
        // A struct declared elsewhere with the same layout is the same type as far as memory goes.
        Assert.True(segment.TryFind("p", out ShmPtr<OtherPoint> same));
        Assert.Equal(0, same.Value.A);
    }

    [Fact]
    public void Types_holding_pointers_are_refused()
    {
        SharedSegment segment = NewSegment("obj");
        ArgumentException e = Assert.Throws<ArgumentException>(() => segment.Construct<WithPointer>("ptr"));
        Assert.Contains("pointer", e.Message, StringComparison.Ordinal);
        Assert.False(segment.TryFind<int>("ptr", out _));
    }

    [Fact]
    public void Anonymous_objects_are_reached_by_handle_and_type_checked()
    {
        SharedSegment segment = NewSegment("obj");
        ShmPtr<Point> anonymous = segment.ConstructAnonymous(new Point { X = 7, Y = 8 });
        Assert.Equal(ShmOwnership.Segment, segment.GetOwnership(anonymous.Handle));
        ShmPtr<Point> again = segment.GetPtr<Point>(anonymous.Handle);
        Assert.Equal(8, again.Value.Y);
        Assert.Throws<InvalidCastException>(() => segment.GetPtr<Reading>(anonymous.Handle));
        Assert.Empty(segment.GetNamedObjects());
        segment.Free(anonymous.Handle);
        Assert.Throws<InvalidOperationException>(() => segment.GetPtr<Point>(anonymous.Handle));
    }

    [Fact]
    public void Plain_blocks_are_viewed_as_arrays()
    {
        SharedSegment segment = NewSegment("obj");
        ShmPtr<int> array = segment.AllocateArray<int>(10);
        Assert.Equal(10, array.Length);
        Assert.All(array.AsSpan().ToArray(), v => Assert.Equal(0, v));
        array[9] = 99;
        Assert.Equal(99, segment.GetPtr<int>(array.Handle)[9]);
        Assert.Throws<ArgumentOutOfRangeException>(() => array[10]);
        Assert.Throws<ArgumentOutOfRangeException>(() => array[-1]);
        Assert.Throws<ArgumentException>(() => segment.GetPtr<Reading>(segment.Allocate(4))); // too small for one
        Assert.Throws<InvalidOperationException>(() => default(ShmPtr<int>).Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => segment.AllocateArray<long>(0));
    }

    [Fact]
    public void The_directory_grows_and_keeps_every_name()
    {
        SharedSegment segment = NewSegment("obj");
        for (int i = 0; i < 300; i++)
        {
            segment.Construct($"item.{i}", i);
        }

        for (int i = 0; i < 300; i += 2)
        {
            Assert.True(segment.Destroy($"item.{i}"));
        }

        for (int i = 0; i < 300; i++)
        {
            bool found = segment.TryFind($"item.{i}", out ShmPtr<int> value);
            Assert.Equal(i % 2 == 1, found);
            if (found)
            {
                Assert.Equal(i, value.Value);
            }
        }

        IReadOnlyList<NamedObjectInfo> objects = segment.GetNamedObjects();
        Assert.Equal(150, objects.Count);
        Assert.All(objects, o => Assert.Equal("System.Int32", o.TypeName));
        segment.ValidateHeap();
    }

    [Fact]
    public void Processes_racing_FindOrConstruct_all_get_the_same_object()
    {
        string name = NewName("objrace");
        using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 1 << 20 });
        var racers = Enumerable.Range(0, 4).Select(_ => Host("obj-race", name, "--object", "counter")).ToList();
        racers.ForEach(r => r.WaitForLine("waiting"));
        racers.ForEach(r => r.Send("go"));
        List<string> results = racers.Select(r => r.WaitForLine("result")).ToList();
        Assert.Single(results, line => Field(line, "created") == "True");
        Assert.Single(results.Select(line => Field(line, "handle")).Distinct());
        Assert.All(results, line => Assert.Equal("12648430", Field(line, "magic")));
        Assert.Equal(["1", "2", "3", "4"], results.Select(line => Field(line, "count")).Order());
        Assert.True(segment.TryFind("counter", out ShmPtr<Counter> counter));
        Assert.Equal(4, counter.Value.Count);
    }

    [Fact]
    public void The_readme_example_a_config_object_read_by_a_second_process()
    {
        string name = NewName("readme");
        using SharedSegment segment = SharedSegment.OpenOrCreate(name, new SegmentOptions { Capacity = 1 << 20 });
        ShmPtr<Config> config = segment.FindOrConstruct<Config>("config");
        ref Config c = ref config.Value;
        c.Version = 3;
        c.Title.Assign(segment, "arm controller");
        c.Gains.AddRange(segment, [0.5, 1.25, 2.0]);

        ChildProcess reader = Host("read-config", name, "--object", "config");
        string line = reader.WaitForLine("config");
        Assert.Equal("3", Field(line, "version"));
        Assert.Equal("arm_controller", Field(line, "title"));
        Assert.Equal("0.5,1.25,2", Field(line, "gains"));
        Assert.Equal(0, reader.WaitForExit());

        // And the other way: a child writes, this process reads.
        ChildProcess writer = Host("write-config", name, "--object", "config2");
        writer.WaitForLine("written");
        Assert.True(segment.TryFind("config2", out ShmPtr<Config> written));
        Assert.Equal(7, written.Value.Version);
        Assert.Equal("written by the child", written.Value.Title.ToString(segment));
        Assert.Equal([1.5, 2.5], written.Value.Gains.AsSpan(segment).ToArray());
    }

    [Fact]
    public void A_process_killed_holding_the_directory_lock_does_not_block_the_others()
    {
        string name = NewName("dirlock");
        using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 1 << 20 });
        segment.Construct("before", 1);
        ChildProcess holder = Host("dir-lock-hold", name);
        holder.WaitForLine("locked");
        holder.Kill();
        Assert.True(segment.TryFind("before", out ShmPtr<int> before));
        Assert.Equal(1, before.Value);
        segment.Construct("after", 2);
        Assert.Equal(2, segment.GetNamedObjects().Count);
    }

    [Fact]
    public async Task Killing_a_process_that_constructs_and_destroys_at_random_moments_keeps_the_directory_whole()
    {
        string name = NewName("dirchurn");
        using SharedSegment segment = SharedSegment.Create(name, new SegmentOptions { Capacity = 1 << 20 });
        var random = new Random(2026);
        for (int round = 0; round < 20; round++)
        {
            ChildProcess child = Host("obj-churn", name, "--seed", round.ToString(CultureInfo.InvariantCulture));
            child.WaitForLine("running");
            await Task.Delay(random.Next(0, 10)); // a random moment, not synchronization
            child.Kill();

            // Every object the directory lists is whole and findable; the heap holds together.
            foreach (NamedObjectInfo info in segment.GetNamedObjects())
            {
                Assert.True(segment.TryFind(info.Name, out ShmPtr<int> value), info.Name);
                _ = value.Value;
            }

            segment.ValidateHeap();
        }

        foreach (NamedObjectInfo info in segment.GetNamedObjects())
        {
            Assert.True(segment.Destroy(info.Name));
        }

        segment.ReclaimDeadProcesses();
        segment.ValidateHeap();
        HeapStatistics stats = segment.GetHeapStatistics();
        Assert.Equal(1, stats.AllocatedBlocks); // only the directory's table: nothing leaked
        Assert.Empty(segment.GetNamedObjects());
    }

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

    private struct OtherPoint
    {
        public int A;
        public int B;
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

/// <summary>ShmString and ShmVector: contents, growth, storage returned, damage detected.</summary>
public class ContainerTests : SegmentTest
{
    [Fact]
    public void ShmString_assign_append_read_free()
    {
        SharedSegment segment = NewSegment("obj");
        long baseline = segment.GetHeapStatistics().UsedBytes;
        ShmPtr<Config> config = segment.Construct<Config>("c");
        ref ShmString title = ref config.Value.Title;
        Assert.True(title.IsNull);
        Assert.Equal(0, title.GetLength(segment));
        Assert.Equal(string.Empty, title.ToString(segment));

        title.Assign(segment, "hello");
        Assert.Equal("hello", title.ToString(segment));
        ShmHandle storage = title.Storage;
        title.Assign(segment, "bye"); // fits: same storage
        Assert.Equal(storage, title.Storage);
        Assert.Equal(3, title.GetLength(segment));

        var expected = new System.Text.StringBuilder("bye");
        for (int i = 0; i < 2000; i++)
        {
            string piece = i.ToString(CultureInfo.InvariantCulture);
            title.Append(segment, piece);
            expected.Append(piece);
        }

        Assert.Equal(expected.ToString(), title.ToString(segment));
        Assert.True(title.AsSpan(segment).SequenceEqual(expected.ToString()));
        Assert.Equal("ünïcødé ✓", ShmString.Create(segment, "ünïcødé ✓").ToString(segment));

        title.Free(segment);
        Assert.True(title.IsNull);
        title.Free(segment); // harmless
        segment.Destroy("c");
        segment.ValidateHeap();
        Assert.True(segment.GetHeapStatistics().UsedBytes <= baseline + 1024); // only the directory table and the unicode string
    }

    [Fact]
    public void ShmVector_add_remove_grow_free()
    {
        SharedSegment segment = NewSegment("obj");
        long baseline = segment.GetHeapStatistics().UsedBytes;
        ShmPtr<ShmVector<Reading>> holder = segment.ConstructAnonymous<ShmVector<Reading>>();
        ref ShmVector<Reading> vector = ref holder.Value;
        Assert.Equal(0, vector.GetCount(segment));
        Assert.True(vector.AsSpan(segment).IsEmpty);

        for (int i = 0; i < 1000; i++)
        {
            vector.Add(segment, new Reading { Timestamp = i, Value = i * 0.5 });
        }

        Assert.Equal(1000, vector.GetCount(segment));
        Assert.True(vector.GetCapacity(segment) >= 1000);
        Assert.Equal(499.5, vector.GetRef(segment, 999).Value);
        vector.RemoveAt(segment, 0);
        Assert.Equal(1, vector.GetRef(segment, 0).Timestamp);
        Assert.Equal(999, vector.GetCount(segment));
        ShmVector<Reading> copy = vector; // same storage; lambdas cannot capture a ref
        Assert.Throws<ArgumentOutOfRangeException>(() => copy.GetRef(segment, 999));
        Assert.Throws<ArgumentOutOfRangeException>(() => copy.RemoveAt(segment, -1));

        vector.GetRef(segment, 5).Value = -1;
        Assert.Equal(-1, vector.AsSpan(segment)[5].Value);

        vector.Clear(segment);
        Assert.Equal(0, vector.GetCount(segment));
        vector.Assign(segment, [new Reading { Timestamp = 42 }]);
        Assert.Equal(42, vector.AsSpan(segment)[0].Timestamp);
        vector.Reserve(segment, 5000);
        Assert.True(vector.GetCapacity(segment) >= 5000);
        Assert.Equal(42, vector.AsSpan(segment)[0].Timestamp);

        vector.Free(segment);
        segment.Free(holder.Handle);
        segment.ValidateHeap();
        Assert.Equal(baseline, segment.GetHeapStatistics().UsedBytes);

        ShmVector<int> made = ShmVector.Create(segment, [1, 2, 3]);
        Assert.Equal([1, 2, 3], made.AsSpan(segment).ToArray());
        made.Free(segment);
    }

    [Fact]
    public void A_vector_read_as_another_element_type_is_an_invalid_cast()
    {
        SharedSegment segment = NewSegment("obj");
        ShmVector<int> ints = ShmVector.Create(segment, [1, 2, 3, 4]);
        ShmVector<long> longs = System.Runtime.CompilerServices.Unsafe.As<ShmVector<int>, ShmVector<long>>(ref ints);
        Assert.Throws<InvalidCastException>(() => longs.GetCount(segment));
        ShmString text = System.Runtime.CompilerServices.Unsafe.As<ShmVector<int>, ShmString>(ref ints);
        Assert.Throws<InvalidSegmentException>(() => text.ToString(segment));
    }

    [Fact]
    public void Damaged_containers_are_exceptions_not_stray_accesses()
    {
        SharedSegment segment = NewSegment("obj");
        ShmPtr<Config> config = segment.Construct<Config>("c");
        config.Value.Title.Assign(segment, "text");
        config.Value.Gains.AddRange(segment, [1.0, 2.0]);

        // A count beyond the storage.
        long payload = segment.HeapInternal.GetPayloadOffset(config.Value.Gains.Storage, out _, out _);
        segment.Memory.Int32(payload) = 1_000_000;
        Assert.Throws<InvalidSegmentException>(() => config.Value.Gains.AsSpan(segment));
        segment.Memory.Int32(payload) = -5;
        Assert.Throws<InvalidSegmentException>(() => config.Value.Gains.GetCount(segment));

        // A storage handle that points nowhere sensible.
        MemoryMarshal.Write(MemoryMarshal.AsBytes(new Span<ShmString>(ref config.Value.Title)), 0x0123_4567_89AB_CDEFUL);
        Assert.ThrowsAny<ArgumentException>(() => config.Value.Title.ToString(segment));
        MemoryMarshal.Write(MemoryMarshal.AsBytes(new Span<ShmString>(ref config.Value.Title)), ulong.MaxValue);
        Assert.ThrowsAny<ArgumentException>(() => config.Value.Title.GetLength(segment));
    }
}
