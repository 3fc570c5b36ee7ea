using System.Threading.Channels;

#pragma warning disable CA2012 // Use ValueTasks correctly: pending operations are held to check they are pending.

namespace SharedMemChannels.Tests.Channels;

/// <summary>
/// The prioritized items of the contract (the BCL's <c>Channel.CreateUnboundedPrioritized</c>, .NET 9): run
/// by the prioritized flavours, the BCL's own (the oracle) and ours, in one process and across two.
/// </summary>
public abstract partial class ChannelConformanceTests
{
    [SkippableFact]
    public void Prioritized_items_are_read_smallest_first_whatever_the_order_they_were_written_in()
    {
        Skip.IfNot(Prioritized, "a prioritized channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        int[] written = [5, 1, 4, 1, 3, 9, 2, 6, 5, 3];
        for (int i = 0; i < written.Length; i++)
        {
            Assert.True(c.Writer.TryWrite(written[i]));
            Assert.True(c.Reader.TryPeek(out int smallest));
            Assert.Equal(written.Take(i + 1).Min(), smallest);
        }

        Assert.Equal(written.Length, c.Reader.Count);
        Assert.Equal(written.Order(), Drain(c.Reader));
    }

    [SkippableFact]
    public void Prioritized_a_smaller_item_written_later_is_read_before_the_larger_ones_waiting()
    {
        Skip.IfNot(Prioritized, "a prioritized channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(2));
        Assert.True(c.Writer.TryWrite(10));
        Assert.True(c.Writer.TryWrite(20));
        Assert.True(c.Reader.TryRead(out int first));
        Assert.Equal(10, first);
        Assert.True(c.Writer.TryWrite(5));
        Assert.True(c.Writer.TryWrite(30));
        Assert.True(c.Writer.TryWrite(15));
        Assert.Equal([5, 15, 20, 30], Drain(c.Reader));
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Prioritized_peek_and_count_are_supported_and_a_waiting_reader_gets_the_first_item(bool singleReader)
    {
        Skip.IfNot(Prioritized, "a prioritized channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(2, SingleReader: singleReader));
        Assert.True(c.Reader.CanPeek);
        Assert.True(c.Reader.CanCount);
        Assert.Equal(0, c.Reader.Count);
        ValueTask<int> read = c.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        Assert.True(c.Writer.TryWrite(8));
        Assert.Equal(8, await read.AsTask().WaitAsync(Generous));
        Assert.True(c.Writer.TryWrite(3));
        Assert.True(c.Writer.TryWrite(1));
        Assert.Equal(2, c.Reader.Count);
        Assert.True(c.Reader.TryPeek(out int head));
        Assert.Equal(1, head);
        c.Writer.Complete();
        Assert.True(c.Reader.TryPeek(out head));
        Assert.Equal(1, head);
        Assert.Equal(1, await c.Reader.ReadAsync());
        Assert.False(c.Reader.Completion.IsCompleted);
        Assert.Equal(3, await c.Reader.ReadAsync());
        await c.Reader.Completion.WaitAsync(Generous);
        Assert.False(c.Reader.TryPeek(out _));
        Assert.Equal(0, c.Reader.Count);
    }

    [SkippableFact]
    public void Prioritized_random_writes_and_reads_always_take_the_smallest_item_there()
    {
        Skip.IfNot(Prioritized, "a prioritized channel's contract");
        Channel<int> c = CreateBounded(new ChannelSpec(4));
        var random = new Random(17);
        var model = new List<int>();
        for (int i = 0; i < 600; i++)
        {
            if (model.Count == 0 || random.Next(3) != 0)
            {
                int item = random.Next(-50, 50);
                Assert.True(c.Writer.TryWrite(item));
                model.Add(item);
            }
            else
            {
                Assert.True(c.Reader.TryRead(out int item));
                Assert.Equal(model.Min(), item);
                model.Remove(item);
            }
        }

        Assert.Equal(model.Count, c.Reader.Count);
        Assert.Equal(model.Order(), Drain(c.Reader));
    }
}
