using System.Globalization;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

#pragma warning disable CS0649 // Layout specimens: their fields are never written, only measured.

internal struct Point
{
    public int X;
    public int Y;
}

/// <summary>Another struct with <see cref="Point"/>'s layout: the same type as far as memory goes.</summary>
internal struct OtherPoint
{
    public int A;
    public int B;
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

/// <summary>
/// Named and anonymous objects: construct, find, destroy, type checks, races between processes. Runs once
/// per backend; the children open the segment of the test's backend.
/// </summary>
public abstract class NamedObjectTestsBase : SegmentTest
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
        using SharedSegment segment = CreateSegment(name, NewOptions());
        var racers = Enumerable.Range(0, 4).Select(_ => HostOnBackend("obj-race", name, "--object", "counter")).ToList();
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
        using SharedSegment segment = OpenOrCreateSegment(name, NewOptions());
        ShmPtr<Config> config = segment.FindOrConstruct<Config>("config");
        ref Config c = ref config.Value;
        c.Version = 3;
        c.Title.Assign(segment, "arm controller");
        c.Gains.AddRange(segment, [0.5, 1.25, 2.0]);

        ChildProcess reader = HostOnBackend("read-config", name, "--object", "config");
        string line = reader.WaitForLine("config");
        Assert.Equal("3", Field(line, "version"));
        Assert.Equal("arm_controller", Field(line, "title"));
        Assert.Equal("0.5,1.25,2", Field(line, "gains"));
        Assert.Equal(0, reader.WaitForExit());

        // And the other way: a child writes, this process reads.
        ChildProcess writer = HostOnBackend("write-config", name, "--object", "config2");
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
        using SharedSegment segment = CreateSegment(name, NewOptions());
        segment.Construct("before", 1);
        ChildProcess holder = HostOnBackend("dir-lock-hold", name);
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
        using SharedSegment segment = CreateSegment(name, NewOptions());
        var random = new Random(2026);
        for (int round = 0; round < 20; round++)
        {
            ChildProcess child = HostOnBackend("obj-churn", name, "--seed", round.ToString(CultureInfo.InvariantCulture));
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
}

/// <summary>The named-object tests on POSIX segments.</summary>
public sealed class NamedObjectTestsPosix : NamedObjectTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.Posix;
}

/// <summary>The named-object tests on System V segments.</summary>
public sealed class NamedObjectTestsSystemV : NamedObjectTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;
}
