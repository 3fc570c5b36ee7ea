using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;

namespace SharedMemChannels.Samples;

/// <summary>
/// Seed 000 (the C++ SharedMemChannels) ported: <c>Producer&lt;HardwareInfoGetRet&gt;</c> /
/// <c>Consumer&lt;HardwareInfoGetRet&gt;</c>, whose elements hold strings and a vector of feature records in
/// shared memory, and the simple <c>HardwareInfoGetCmd</c> going the other way. Run with no arguments:
/// <list type="bullet">
/// <item>this process is the <b>client</b>: it opens both channels, starts the <b>service</b> process, sends
/// <c>HardwareInfoGetCmd</c> requests and reads the <c>HardwareInfoGetRet</c> replies, checking every string
/// and feature;</item>
/// <item>the <b>service</b> answers each request with an element built in the reply channel's segment
/// (the seed's <c>CreatePtr</c> with the pool's allocator), one of them with 50,000 features.</item>
/// </list>
/// No size is computed anywhere: each channel is the one-line
/// <c>SharedChannel.OpenOrCreateBounded&lt;T&gt;(name, options)</c>, whose segment grows when strings and
/// vectors need room (the seed's <c>MemoryPool</c> needed its overall size estimated with padding, and
/// worked by luck). At the end the client checks that the replies' heap is back at its baseline (every
/// element's storage freed exactly once, by the channel) and that both segments are gone.
/// </summary>
internal static class Program
{
    /// <summary>The request whose reply carries this many features (about 1.1 MiB): far past the channel's first segment size.</summary>
    private const int BigFeatureCount = 50_000;

    private static async Task<int> Main(string[] args)
    {
        try
        {
            return args.FirstOrDefault() switch
            {
                "service" => await ServiceAsync(args[1]).ConfigureAwait(false),
                _ => await ClientAsync(args).ConfigureAwait(false),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"usage: HardwareInfo [--name NAME] [--count REQUESTS]   ({e.Message})");
            return 2;
        }
    }

    // The seed's channel has "1 element, plus ingress and egress": a capacity of 2 here is exactly 2.
    private static SharedChannelOptions ReplyOptions() => new(2) { SingleReader = true, SingleWriter = true };

    private static SharedChannelOptions CommandOptions() => new(16) { SingleReader = true, SingleWriter = true };

    private static string CommandChannel(string name) => name + ".cmd";

    private static string ReplyChannel(string name) => name + ".ret";

    private static async Task<int> ClientAsync(string[] args)
    {
        string name = SampleArgs.SegmentName(args, "hwinfo");
        int count = SampleArgs.GetCount(args, "--count", 2_000);
        Console.WriteLine($"HardwareInfo: channels '{CommandChannel(name)}' (HardwareInfoGetCmd) and '{ReplyChannel(name)}' (HardwareInfoGetRet), {count} requests");

        try
        {
            // Consumer<HardwareInfoGetRet> and Producer<HardwareInfoGetCmd>, each one line: no MemoryPool to
            // size, no padding. Each channel gets a segment of its own, removed with its last process.
            using SharedChannel<HardwareInfoGetCmd> commands = SharedChannel.OpenOrCreateBounded<HardwareInfoGetCmd>(CommandChannel(name), CommandOptions());
            using SharedChannel<HardwareInfoGetRet> replies = SharedChannel.OpenOrCreateBounded<HardwareInfoGetRet>(ReplyChannel(name), ReplyOptions());
            SharedSegment segment = replies.Segment;
            long baseline = segment.GetHeapStatistics().UsedBytes;
            long firstCapacity = segment.Capacity;
            Console.WriteLine($"client: reply segment '{segment.Name}' starts at {firstCapacity / 1024} KiB (from the capacity alone), heap used {baseline} bytes");

            using RoleProcess service = RoleProcess.Start("service", null, "service", name);
            Task sending = SendRequestsAsync(commands, count);

            // One reply read by hand: the reader owns the element until it releases it (the channel then
            // frees its strings and its vector; releasing twice is an exception).
            HardwareInfoGetRet first = await replies.Reader.ReadAsync().ConfigureAwait(false);
            long features;
            try
            {
                if (Check(segment, in first, 0) is { } damage)
                {
                    return Fail(damage);
                }

                features = first.Features.GetCount(segment);
                Console.WriteLine($"client: reply 0: {Describe(segment, in first)}");
            }
            finally
            {
                replies.Release(in first);
            }

            // The rest with await foreach, which releases each element when the loop moves on: nothing to free.
            int received = 1;
            await foreach (HardwareInfoGetRet info in replies.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                if (Check(segment, in info, received) is { } damage)
                {
                    return Fail(damage);
                }

                int n = info.Features.GetCount(segment);
                features += n;
                if (received < 3 || n == BigFeatureCount)
                {
                    Console.WriteLine($"client: reply {received}: {Describe(segment, in info)}");
                }

                received++;
            }

            await sending.ConfigureAwait(false);
            await service.ExpectSuccessAsync().ConfigureAwait(false);
            if (received != count)
            {
                return Fail($"{received} replies arrived for {count} requests");
            }

            Console.WriteLine($"client: {received} replies, every string and all {features} features as sent");
            Console.WriteLine(segment.Capacity > firstCapacity
                ? $"client: the reply segment grew from {firstCapacity / 1024} KiB to {segment.Capacity / 1024} KiB when a reply needed room; no size was given anywhere"
                : $"client: the reply segment stayed at {firstCapacity / 1024} KiB; no size was given anywhere");
            HeapStatistics heap = segment.GetHeapStatistics();
            if (heap.UsedBytes != baseline)
            {
                return Fail($"the reply heap uses {heap.UsedBytes} bytes, {heap.UsedBytes - baseline} more than before the first reply: an element's storage leaked");
            }

            Console.WriteLine($"client: heap used bytes back at the baseline ({baseline} bytes): each element's strings and vector freed exactly once");
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or ChannelClosedException)
        {
            return Fail(e.Message);
        }

        foreach (string channel in new[] { CommandChannel(name), ReplyChannel(name) })
        {
            if (SharedSegment.Exists(SharedChannel.SegmentPrefix + channel))
            {
                SharedSegment.Remove(SharedChannel.SegmentPrefix + channel);
                return Fail($"the segment of channel '{channel}' still exists after both processes closed it");
            }
        }

        Console.WriteLine("client: both channels' segments removed with their last process");
        Console.WriteLine("HardwareInfo: OK");
        return 0;
    }

    private static async Task SendRequestsAsync(SharedChannel<HardwareInfoGetCmd> commands, int count)
    {
        for (int i = 0; i < count; i++)
        {
            // A simple element (the seed's CreatePtr without an allocator): written as it is.
            await commands.Writer.WriteAsync(new HardwareInfoGetCmd { RequestId = i, DeviceIndex = i % 4 }).ConfigureAwait(false);
        }

        commands.Writer.Complete();
    }

    private static int Fail(string why)
    {
        Console.WriteLine($"HardwareInfo: FAILED: {why}");
        return 1;
    }

    /// <summary>
    /// The service: Producer&lt;HardwareInfoGetRet&gt;. Builds each reply in the reply channel's segment and
    /// writes it; from then on the element (with its strings and vector) belongs to the channel.
    /// </summary>
    private static async Task<int> ServiceAsync(string name)
    {
        using SharedChannel<HardwareInfoGetCmd> commands = SharedChannel.OpenOrCreateBounded<HardwareInfoGetCmd>(CommandChannel(name), CommandOptions());
        using SharedChannel<HardwareInfoGetRet> replies = SharedChannel.OpenOrCreateBounded<HardwareInfoGetRet>(ReplyChannel(name), ReplyOptions());
        SharedSegment segment = replies.Segment;
        int answered = 0;
        await foreach (HardwareInfoGetCmd command in commands.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            HardwareInfoGetRet reply = Build(segment, command);
            try
            {
                await replies.Writer.WriteAsync(reply).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                // Not written: the element is still ours, so its storage is ours to free.
                Free(segment, ref reply);
                throw;
            }

            answered++;
        }

        replies.Writer.Complete();
        Console.WriteLine($"answered {answered} requests");
        return 0;
    }

    /// <summary>The seed's <c>CreatePtr(allocator)</c>: strings and the vector made in the segment, then the element around them.</summary>
    private static HardwareInfoGetRet Build(SharedSegment segment, HardwareInfoGetCmd command)
    {
        int id = command.RequestId;
        var reply = new HardwareInfoGetRet { RequestId = id, Status = 0, MemoryBytes = Expected.MemoryBytes(id) };
        try
        {
            reply.Vendor = ShmString.Create(segment, Expected.Vendor(id));
            reply.Model = ShmString.Create(segment, Expected.Model(id));
            reply.SerialNumber = ShmString.Create(segment, Expected.SerialNumber(id));
            reply.FirmwareVersion = ShmString.Create(segment, Expected.FirmwareVersion(id));
            int features = Expected.FeatureCount(id);
            reply.Features.Reserve(segment, features);
            for (int k = 0; k < features; k++)
            {
                FeatureInfo feature = Expected.Feature(id, k);
                feature.Name = ShmString.Create(segment, Expected.FeatureName(k));
                try
                {
                    reply.Features.Add(segment, feature); // the vector owns the name from here on
                }
                catch (OutOfSharedMemoryException)
                {
                    feature.Name.Free(segment);
                    throw;
                }
            }

            return reply;
        }
        catch (OutOfSharedMemoryException)
        {
            Free(segment, ref reply);
            throw;
        }
    }

    /// <summary>Frees what an element holds, for an element that never made it into the channel.</summary>
    private static void Free(SharedSegment segment, ref HardwareInfoGetRet reply)
    {
        reply.Vendor.Free(segment);
        reply.Model.Free(segment);
        reply.SerialNumber.Free(segment);
        reply.FirmwareVersion.Free(segment);
        reply.Features.Free(segment);
    }

    /// <summary>Checks reply <paramref name="index"/> field by field; null when it is what the service sent.</summary>
    private static string? Check(SharedSegment segment, in HardwareInfoGetRet info, int index)
    {
        int id = info.RequestId;
        if (id != index)
        {
            return $"reply {id} arrived where {index} was expected";
        }

        if (info.Status != 0 || info.MemoryBytes != Expected.MemoryBytes(id)
            || !info.Vendor.AsSpan(segment).SequenceEqual(Expected.Vendor(id))
            || !info.Model.AsSpan(segment).SequenceEqual(Expected.Model(id))
            || !info.SerialNumber.AsSpan(segment).SequenceEqual(Expected.SerialNumber(id))
            || !info.FirmwareVersion.AsSpan(segment).SequenceEqual(Expected.FirmwareVersion(id)))
        {
            return $"reply {id} has other values than were sent: {Describe(segment, in info)}";
        }

        Span<FeatureInfo> features = info.Features.AsSpan(segment);
        if (features.Length != Expected.FeatureCount(id))
        {
            return $"reply {id} has {features.Length} features, {Expected.FeatureCount(id)} were sent";
        }

        for (int k = 0; k < features.Length; k++)
        {
            FeatureInfo expected = Expected.Feature(id, k);
            if (features[k].FeatureId != expected.FeatureId || features[k].Version != expected.Version || features[k].Flags != expected.Flags || features[k].Enabled != expected.Enabled
                || !features[k].Name.AsSpan(segment).SequenceEqual(Expected.FeatureName(k)))
            {
                return $"reply {id}: feature {k} differs";
            }
        }

        return null;
    }

    private static string Describe(SharedSegment segment, in HardwareInfoGetRet info)
    {
        Span<FeatureInfo> features = info.Features.AsSpan(segment);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{info.Vendor.ToString(segment)} {info.Model.ToString(segment)}, serial {info.SerialNumber.ToString(segment)}, firmware {info.FirmwareVersion.ToString(segment)}, {info.MemoryBytes >> 30} GiB, {features.Length} features");
        if (features.Length <= 4)
        {
            text.Append(": ").AppendJoin(", ", features.ToArray().Select(f => string.Create(CultureInfo.InvariantCulture, $"#{f.FeatureId} {f.Name.ToString(segment)} v{f.Version} {(f.Enabled != 0 ? "on" : "off")}")));
        }
        else
        {
            text.Append(CultureInfo.InvariantCulture, $" ({features.Length * Marshal.SizeOf<FeatureInfo>() / 1024} KiB in the segment)");
        }

        return text.ToString();
    }

    /// <summary>What the service puts in reply <c>id</c>, so that the client can check every field.</summary>
    private static class Expected
    {
        public static string Vendor(int id) => (id % 4) % 2 == 0 ? "Contoso" : "Fabrikam";

        public static string Model(int id) => string.Create(CultureInfo.InvariantCulture, $"Accelerator X{id % 4}00 rev {id % 7}");

        public static string SerialNumber(int id) => string.Create(CultureInfo.InvariantCulture, $"SN-{id % 4:D2}-{id:D6}");

        public static string FirmwareVersion(int id) => string.Create(CultureInfo.InvariantCulture, $"{id % 4}.{id % 10}.{id}");

        public static long MemoryBytes(int id) => (long)((id % 4) + 1) << 32;

        /// <summary>1 to 12 features; request 5 gets <see cref="BigFeatureCount"/>.</summary>
        public static int FeatureCount(int id) => id == 5 ? BigFeatureCount : 1 + (id % 12);

        public static string FeatureName(int k) => string.Create(CultureInfo.InvariantCulture, $"feature-{k}");

        /// <summary>Feature <paramref name="k"/> of reply <paramref name="id"/>, without its name (made in the segment by the service).</summary>
        public static FeatureInfo Feature(int id, int k) => new()
        {
            FeatureId = k,
            Version = (id % 5) + k,
            Flags = ((long)id << 20) | (uint)k,
            Enabled = (id + k) % 2,
        };
    }
}
