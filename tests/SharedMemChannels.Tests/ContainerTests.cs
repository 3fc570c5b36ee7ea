using System.Globalization;
using System.Runtime.InteropServices;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>ShmString and ShmVector: contents, growth, storage returned, damage detected. Runs once per backend.</summary>
public abstract class ContainerTestsBase : SegmentTest
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

/// <summary>The container tests on POSIX segments.</summary>
public sealed class ContainerTestsPosix : ContainerTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.Posix;
}

/// <summary>The container tests on System V segments.</summary>
public sealed class ContainerTestsSystemV : ContainerTestsBase
{
    protected override SharedMemoryBackend Backend => SharedMemoryBackend.SystemV;
}
