using System.Diagnostics;
using System.Globalization;
using SharedMemChannels;
using SharedMemChannels.Diagnostics;

namespace Shmc;

/// <summary>An object the two demo processes share: a counter, a string and a vector, all in the segment.</summary>
internal struct Greeting
{
    public int Visits;
    public ShmString Text;
    public ShmVector<int> VisitorPids;
}

/// <summary>
/// <c>shmc demo</c>: this process creates a segment and a named object in it, starts a second process
/// (this same program), and each sees the other attached; the second reads the object and changes it,
/// the first sees the change. Nothing to set up; the segment is removed when both have detached.
/// </summary>
internal static class Demo
{
    private const string ObjectName = "greeting";

    public static int Run(string? name, bool child)
    {
        if (child)
        {
            return Child(name ?? throw new ArgumentException("--child needs --name"));
        }

        name ??= string.Create(CultureInfo.InvariantCulture, $"demo-{Environment.ProcessId}");
        SharedName.Validate(name, nameof(name));
        return Parent(name);
    }

    private static int Parent(string name)
    {
        string me = string.Create(CultureInfo.InvariantCulture, $"[parent {Environment.ProcessId}]");
        var options = new SegmentOptions { Capacity = 256 * 1024, MaxCapacity = 64 * 1024 * 1024, RemoveOnLastDetach = true };
        using (SharedSegment segment = SharedSegment.Create(name, options))
        {
            Console.WriteLine($"{me} created segment '{name}' ({segment.Backend}, {Format.Bytes(segment.Capacity)}, may grow to {Format.Bytes(segment.MaxCapacity)})");
            ShmPtr<Greeting> greeting = segment.Construct<Greeting>(ObjectName);
            ref Greeting g = ref greeting.Value;
            g.Text.Assign(segment, $"hello from process {Environment.ProcessId}");
            g.VisitorPids.Add(segment, Environment.ProcessId);
            g.Visits = 1;
            Console.WriteLine($"{me} constructed named object '{ObjectName}': text \"{g.Text.ToString(segment)}\", visitors [{string.Join(", ", g.VisitorPids.AsSpan(segment).ToArray())}]");

            using Process child = StartChild(name);
            Console.WriteLine($"{me} started process {child.Id}");
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                Console.WriteLine(line);
                if (line.EndsWith("waiting for the parent", StringComparison.Ordinal))
                {
                    break;
                }
            }

            if (line is null)
            {
                child.WaitForExit();
                return Program.Fail($"the child process exited early (code {child.ExitCode}): {child.StandardError.ReadToEnd()}", Program.ExitFailed);
            }

            PrintProcesses(me, segment, child.Id);
            Console.WriteLine($"{me} reads '{ObjectName}': {g.Visits} visits, text \"{g.Text.ToString(segment)}\", visitors [{string.Join(", ", g.VisitorPids.AsSpan(segment).ToArray())}]");
            child.StandardInput.WriteLine("bye");
            child.StandardInput.Close();
            Console.Write(child.StandardOutput.ReadToEnd());
            child.WaitForExit();

            g.Text.Free(segment);
            g.VisitorPids.Free(segment);
            segment.Destroy(ObjectName);
            HeapStatistics heap = segment.GetHeapStatistics();
            Console.WriteLine($"{me} destroyed '{ObjectName}'; heap: {Format.Bytes(heap.UsedBytes)} used, {Format.Bytes(heap.FreeBytes)} free");
        }

        Console.WriteLine($"{me} detached; segment '{name}' {(SharedSegment.Exists(name) ? "still exists" : "was removed with its last process")}");
        return Program.ExitOk;
    }

    private static int Child(string name)
    {
        string me = string.Create(CultureInfo.InvariantCulture, $"[child  {Environment.ProcessId}]");
        using SharedSegment segment = SharedSegment.Open(name);
        int creator = SegmentDiagnostics.Inspect(name, segment.Backend).CreatorProcessId;
        Console.WriteLine($"{me} opened segment '{name}' created by process {creator}");
        if (!segment.TryFind(ObjectName, out ShmPtr<Greeting> greeting))
        {
            Console.WriteLine($"{me} found no '{ObjectName}'");
            return Program.ExitFailed;
        }

        ref Greeting g = ref greeting.Value;
        Console.WriteLine($"{me} found '{ObjectName}': text \"{g.Text.ToString(segment)}\"");
        g.Text.Append(segment, $", and hello back from process {Environment.ProcessId}");
        g.VisitorPids.Add(segment, Environment.ProcessId);
        g.Visits++;
        PrintProcesses(me, segment, creator);
        Console.WriteLine($"{me} changed '{ObjectName}'; waiting for the parent");
        Console.Out.Flush();
        Console.ReadLine();
        Console.WriteLine($"{me} detaching");
        return Program.ExitOk;
    }

    private static void PrintProcesses(string me, SharedSegment segment, int peer)
    {
        // The same read-only view any monitoring tool has: the public inspection API.
        IReadOnlyList<ProcessReport> rows = SegmentDiagnostics.Inspect(segment.Name, segment.Backend).Processes;
        Console.WriteLine($"{me} sees {rows.Count} processes attached:");
        foreach (ProcessReport row in rows)
        {
            string who = row.ProcessId == Environment.ProcessId ? "this process" : row.ProcessId == peer ? "the other process" : "another process";
            string alive = row.Liveness.ToString().ToLowerInvariant();
            Console.WriteLine($"{me}   slot {row.Slot}: pid {row.ProcessId} ({who}, {alive})");
        }
    }

    private static Process StartChild(string name)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot tell where this program is.");
        var start = new ProcessStartInfo(self)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Demo).Assembly.Location); // run as "dotnet shmc.dll"
        }

        start.ArgumentList.Add("demo");
        start.ArgumentList.Add("--child");
        start.ArgumentList.Add("--name");
        start.ArgumentList.Add(name);
        return Process.Start(start) ?? throw new InvalidOperationException("Could not start the second process.");
    }
}
