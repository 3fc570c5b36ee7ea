using System.Globalization;
using System.Threading.Channels;

namespace SharedMemChannels.Samples;

/// <summary>
/// Seed 004 (Boost.Interprocess, "handles through a lock-free queue") ported. Run with no arguments, this
/// program plays the seed's whole scenario with each role in its own process:
/// <list type="bullet">
/// <item><b>creator</b>: makes the segment (<c>managed_shared_memory(create_only, ...)</c>) and the named MPMC
/// queue of handles (<c>construct&lt;boost::lockfree::queue&lt;handle_t&gt;&gt;("MyIPCHandleQueue")</c>), then waits;</item>
/// <item><b>producers</b> (two): open the segment, find the queue by name, construct anonymous objects holding an
/// id, a 64-bit id and a string (<c>construct&lt;IPCHandleData&gt;(anonymous_instance)</c>) and push their handles
/// (<c>get_handle_from_address</c>);</item>
/// <item><b>consumers</b> (two): open the segment, find the queue by name, pop handles, view each object
/// (<c>get_address_from_handle</c>), print and check it, and destroy it (<c>destroy_ptr</c>: the string's
/// storage, then the object).</item>
/// </list>
/// This process starts them, waits for them, checks that every object arrived exactly once and that the
/// heap's used bytes are back where they were before the first object, and exits 0 (1 on any failure).
/// </summary>
internal static class Program
{
    /// <summary>The queue's name, as in the seed.</summary>
    private const string QueueName = "MyIPCHandleQueue";

    private const int Producers = 2;
    private const int Consumers = 2;

    private static async Task<int> Main(string[] args)
    {
        try
        {
            return args.FirstOrDefault() switch
            {
                "creator" => await CreatorAsync(args[1]).ConfigureAwait(false),
                "producer" => await ProducerAsync(args[1], SampleArgs.Int(args[2]), SampleArgs.Int(args[3])).ConfigureAwait(false),
                "consumer" => await ConsumerAsync(args[1], SampleArgs.Int(args[2])).ConfigureAwait(false),
                _ => await RunScenarioAsync(args).ConfigureAwait(false),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"usage: BoostStyle [--name SEGMENT] [--count OBJECTS-PER-PRODUCER]   ({e.Message})");
            return 2;
        }
    }

    /// <summary>The whole scenario: creator, then consumers and producers, each a child process.</summary>
    private static async Task<int> RunScenarioAsync(string[] args)
    {
        string segmentName = SampleArgs.SegmentName(args, "boost");
        int perProducer = SampleArgs.GetCount(args, "--count", 1000);
        int total = perProducer * Producers;
        Console.WriteLine($"BoostStyle: segment '{segmentName}', queue '{QueueName}', {Producers} producers x {perProducer} objects, {Consumers} consumers");

        var children = new List<RoleProcess>();
        try
        {
            RoleProcess creator = RoleProcess.Start("creator", null, "creator", segmentName);
            children.Add(creator);
            await creator.WaitForLineAsync("ready").ConfigureAwait(false);

            var consumers = new List<RoleProcess>();
            for (int c = 1; c <= Consumers; c++)
            {
                int shown = 0;
                // Every object line is kept for the check below; only the first few of each consumer are shown.
                consumers.Add(RoleProcess.Start($"consumer-{c}", line => !line.StartsWith("object ", StringComparison.Ordinal) || Interlocked.Increment(ref shown) <= 3, "consumer", segmentName, c.ToString(CultureInfo.InvariantCulture)));
            }

            children.AddRange(consumers);
            var producers = new List<RoleProcess>();
            for (int p = 0; p < Producers; p++)
            {
                int shown = 0;
                producers.Add(RoleProcess.Start($"producer-{p + 1}", line => !line.StartsWith("sent ", StringComparison.Ordinal) || Interlocked.Increment(ref shown) <= 3, "producer", segmentName, (1 + (p * perProducer)).ToString(CultureInfo.InvariantCulture), perProducer.ToString(CultureInfo.InvariantCulture)));
            }

            children.AddRange(producers);
            foreach (RoleProcess producer in producers)
            {
                await producer.ExpectSuccessAsync().ConfigureAwait(false);
            }

            // Every producer is done: the queue is completed so that the consumers stop once it is empty.
            creator.Send("complete");
            await creator.WaitForLineAsync("completed").ConfigureAwait(false);
            foreach (RoleProcess consumer in consumers)
            {
                await consumer.ExpectSuccessAsync().ConfigureAwait(false);
            }

            creator.Send("check");
            string heap = await creator.WaitForLineAsync("heap").ConfigureAwait(false);
            await creator.ExpectSuccessAsync().ConfigureAwait(false);

            // Every object arrived once: the ids printed by all consumers together are 1..total, each once.
            int[] seen = new int[total + 1];
            var perConsumer = new List<string>();
            foreach (RoleProcess consumer in consumers)
            {
                int count = 0;
                foreach (string line in consumer.Lines.Where(l => l.StartsWith("object ", StringComparison.Ordinal)))
                {
                    int id = SampleArgs.Int(SampleArgs.Field(line, "id"));
                    if (id < 1 || id > total)
                    {
                        return Fail($"{consumer.Label} received an object with id {id}, outside 1..{total}");
                    }

                    seen[id]++;
                    count++;
                }

                perConsumer.Add($"{consumer.Label}: {count}");
            }

            int missing = seen.Skip(1).Count(n => n == 0);
            int duplicated = seen.Count(n => n > 1);
            if (missing != 0 || duplicated != 0)
            {
                return Fail($"{missing} objects never arrived and {duplicated} arrived more than once");
            }

            Console.WriteLine($"all {total} objects arrived exactly once ({string.Join(", ", perConsumer)})");

            long used = long.Parse(SampleArgs.Field(heap, "used"), CultureInfo.InvariantCulture);
            long baseline = long.Parse(SampleArgs.Field(heap, "baseline"), CultureInfo.InvariantCulture);
            if (used != baseline)
            {
                return Fail($"the heap uses {used} bytes, {used - baseline} more than the {baseline} before the first object: something leaked");
            }

            Console.WriteLine($"heap used bytes back at the baseline ({baseline} bytes): every string and object was destroyed");
            if (SharedSegment.Exists(segmentName))
            {
                return Fail($"segment '{segmentName}' still exists after its last process detached");
            }

            Console.WriteLine($"segment '{segmentName}' removed with its last process");
            Console.WriteLine("BoostStyle: OK");
            return 0;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or FormatException)
        {
            return Fail(e.Message);
        }
        finally
        {
            foreach (RoleProcess child in children)
            {
                child.Dispose();
            }

            // After a failure the creator may have been killed before it detached: remove what it left.
            SharedSegment.Remove(segmentName);
        }
    }

    private static int Fail(string why)
    {
        Console.WriteLine($"BoostStyle: FAILED: {why}");
        return 1;
    }

    /// <summary>
    /// The seed's <c>Creator()</c>: removes a leftover of the name, makes the segment and the named queue,
    /// then waits. Instead of <c>system("pause")</c> it takes two commands on stdin from the scenario:
    /// "complete" (every producer is done) and "check" (every consumer is done: compare the heap with
    /// what it used before the first object, then detach, which removes the segment).
    /// </summary>
    private static async Task<int> CreatorAsync(string segmentName)
    {
        // bip::shared_memory_object::remove("MySharedMemory"): not needed for a leftover of a crashed run
        // (RemoveOnLastDetach segments with no live process are replaced by Create), kept as in the seed.
        SharedSegment.Remove(segmentName);

        // No size to choose: the segment starts at 1 MiB and grows on demand (up to 1 GiB by default)
        // without moving. RemoveOnLastDetach: the last process to detach (or the survivors of a crash)
        // removes it; nobody has to remember shared_memory_object::remove.
        using SharedSegment segment = SharedSegment.Create(segmentName, new SegmentOptions { RemoveOnLastDetach = true });

        // boost::lockfree::queue<handle_t, capacity<65534>>: a bounded MPMC channel of handles. Writers
        // wait when it is full instead of failing a push; readers wait (asleep) when it is empty.
        using SharedChannel<ShmHandle> queue = SharedChannel.CreateBounded<ShmHandle>(segment, QueueName, new SharedChannelOptions(1024));
        long baseline = segment.GetHeapStatistics().UsedBytes;
        Console.WriteLine($"ready: segment '{segment.Name}' ({segment.Capacity / 1024} KiB now, up to {segment.MaxCapacity >> 20} MiB), queue '{queue.Name}' (MPMC, capacity {queue.Capacity}), heap used {baseline} bytes");

        while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } command)
        {
            switch (command)
            {
                case "complete":
                    queue.Writer.Complete();
                    Console.WriteLine("completed the queue: consumers stop when it is empty");
                    break;
                case "check":
                    HeapStatistics heap = segment.GetHeapStatistics();
                    Console.WriteLine($"heap used={heap.UsedBytes} baseline={baseline} blocks={heap.AllocatedBlocks}");
                    return heap.UsedBytes == baseline ? 0 : 1;
                default:
                    Console.Error.WriteLine($"unknown command '{command}'");
                    return 2;
            }
        }

        Console.Error.WriteLine("the scenario went away before the check");
        return 1;
    }

    /// <summary>
    /// The seed's <c>Producer()</c>: opens the segment, finds the queue by name, constructs anonymous
    /// objects and pushes their handles.
    /// </summary>
    private static async Task<int> ProducerAsync(string segmentName, int firstId, int count)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        if (!SharedChannel.Exists(segment, QueueName))
        {
            Console.WriteLine($"could not find \"{QueueName}\"");
            return 1;
        }

        using SharedChannel<ShmHandle> queue = SharedChannel.Open<ShmHandle>(segment, QueueName);
        Console.WriteLine($"found \"{QueueName}\"");
        for (int id = firstId; id < firstId + count; id++)
        {
            // construct<IPCHandleData>(anonymous_instance)(allocator): an object with no name, owned by the
            // segment (it outlives this process until a consumer destroys it). The string's characters go
            // to the segment's heap too; no allocator type to spell out.
            ShmPtr<IpcHandleData> data = segment.ConstructAnonymous(new IpcHandleData
            {
                Id = id,
                Id64 = IpcHandleData.Id64For(id),
                Name = ShmString.Create(segment, IpcHandleData.NameFor(id)),
            });

            // get_handle_from_address: the handle is the object's offset plus a check value, valid in every process.
            ShmHandle handle = data.Handle;
            Console.WriteLine($"sent id={data.Value.Id} id64={data.Value.Id64} name={data.Value.Name.ToString(segment)} handle={handle}");

            // push(handle): from here on the object is the consumer's; this process no longer touches it.
            await queue.Writer.WriteAsync(handle).ConfigureAwait(false);
        }

        Console.WriteLine($"produced {count} objects");
        return 0;
    }

    /// <summary>
    /// The seed's <c>Consumer()</c>: opens the segment, finds the queue by name, pops handles until the
    /// queue is completed and empty, reads each object, checks it and destroys it.
    /// </summary>
    private static async Task<int> ConsumerAsync(string segmentName, int consumerNumber)
    {
        using SharedSegment segment = SharedSegment.Open(segmentName);
        if (!SharedChannel.Exists(segment, QueueName))
        {
            Console.WriteLine($"could not find \"{QueueName}\"");
            return 1;
        }

        using SharedChannel<ShmHandle> queue = SharedChannel.Open<ShmHandle>(segment, QueueName);
        Console.WriteLine($"found \"{QueueName}\"");
        int received = 0;
        try
        {
            await foreach (ShmHandle handle in queue.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                // get_address_from_handle: a typed view of the object. The handle is checked (a block of this
                // segment, allocated, an object of this layout): a bad one is an exception, never a wild read.
                ShmPtr<IpcHandleData> data = segment.GetPtr<IpcHandleData>(handle);
                ref IpcHandleData item = ref data.Value;
                string name = item.Name.ToString(segment);
                Console.WriteLine($"object id={item.Id} id64={item.Id64} name={name} handle={handle}");
                if (item.Id64 != IpcHandleData.Id64For(item.Id) || name != IpcHandleData.NameFor(item.Id))
                {
                    Console.WriteLine($"error: object {item.Id} is damaged (id64 {item.Id64}, name '{name}')");
                    return 1;
                }

                // destroy_ptr: the object's destructor frees the string, then the object's block. Here both are
                // explicit: the string's storage first, then the object.
                item.Name.Free(segment);
                segment.Free(handle);
                received++;
            }
        }
        catch (ChannelClosedException e)
        {
            Console.WriteLine($"error: the queue closed early: {(e.InnerException ?? e).Message}");
            return 1;
        }

        Console.WriteLine($"consumer {consumerNumber}: received and destroyed {received} objects");
        return 0;
    }
}
