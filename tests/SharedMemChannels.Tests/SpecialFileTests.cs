using System.Net.Sockets;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// /dev/shm is world-writable: anyone can put a FIFO, a socket, a directory or a symbolic link under a
/// segment's name first. Every path that looks at a POSIX name (Exists, list, Open, OpenOrCreate, Create,
/// Inspect, Remove, and shmc inspect, list and watch) refuses it at once and leaves it alone. Before, a FIFO
/// hung a read-only open (inspect, watch) forever, waiting for a writer. Each probe runs in a child process,
/// one line per call, so that a hang is a timeout naming the call, never a hung test run.
/// </summary>
public class SpecialFileTests : SegmentTest
{
    public static TheoryData<string> Kinds => ["fifo", "socket", "directory", "symlink"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_path_refuses_a_special_file_of_the_name_at_once_and_leaves_it(string kind)
    {
        string name = NewName("special");
        string path = PosixPath(name);
        using SpecialEntry entry = SpecialEntry.Make(kind, path);

        ChildProcess probe = Host("probe-every-path", name);
        Assert.Equal("False", Result(probe, "exists"));
        Assert.Equal("False", Result(probe, "list"));
        Assert.Equal("InvalidSegmentException", Result(probe, "open"));
        Assert.Equal("InvalidSegmentException", Result(probe, "open-or-create"));
        Assert.Equal("InvalidSegmentException", Result(probe, "create"));
        Assert.Equal("Foreign", Result(probe, "inspect"));
        Assert.Equal("Foreign", Result(probe, "inspect-posix"));
        Assert.Equal("False", Result(probe, "diagnostics-list"));
        Assert.Equal("False", Result(probe, "remove"));
        probe.WaitForLine("done");
        Assert.Equal(0, probe.WaitForExit());

        ChildProcess inspect = Shmc("inspect", name);
        Assert.Equal(1, inspect.WaitForExit());
        Assert.Contains("is not a shared-memory object", inspect.Transcript, StringComparison.Ordinal);
        Assert.Contains(entry.Described, inspect.Transcript, StringComparison.Ordinal);

        ChildProcess watch = Shmc("watch", name, "--count", "1");
        Assert.Equal(1, watch.WaitForExit());
        Assert.Contains("is foreign", watch.Transcript, StringComparison.Ordinal);

        ChildProcess list = Shmc("list", "--json");
        Assert.Equal(0, list.WaitForExit());
        Assert.DoesNotContain($"\"{name}\"", list.Transcript, StringComparison.Ordinal);

        entry.AssertUntouched();
    }

    private static string PosixPath(string name) => "/dev/shm/shmc." + name;

    private static string Result(ChildProcess probe, string call)
    {
        string line = probe.WaitForLine(call + " result=");
        return line[(call.Length + " result=".Length)..];
    }

    /// <summary>A non-regular entry under a segment's name, removed when disposed.</summary>
    private sealed class SpecialEntry : IDisposable
    {
        private readonly string _path;
        private readonly string _kind;
        private readonly Socket? _socket;
        private readonly string? _decoy;

        private SpecialEntry(string path, string kind, Socket? socket = null, string? decoy = null)
        {
            _path = path;
            _kind = kind;
            _socket = socket;
            _decoy = decoy;
        }

        /// <summary>How the library names it in a message.</summary>
        public string Described => _kind switch
        {
            "fifo" => "(a FIFO)",
            "socket" => "(a socket)",
            "directory" => "(a directory)",
            _ => "(a symbolic link)",
        };

        public static SpecialEntry Make(string kind, string path)
        {
            switch (kind)
            {
                case "fifo":
                    Assert.True(MkFifo(path, 0x180) == 0, "mkfifo failed");
                    return new SpecialEntry(path, kind);
                case "socket":
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    socket.Bind(new UnixDomainSocketEndPoint(path));
                    return new SpecialEntry(path, kind, socket);
                case "directory":
                    Directory.CreateDirectory(path);
                    return new SpecialEntry(path, kind);
                default:
                    string decoy = Path.Combine(Path.GetTempPath(), TestRun.Name("decoy"));
                    File.WriteAllBytes(decoy, new byte[64 * 1024]); // the size of a segment: still never followed
                    File.CreateSymbolicLink(path, decoy);
                    return new SpecialEntry(path, kind, decoy: decoy);
            }
        }

        /// <summary>Still there, still what it was.</summary>
        public void AssertUntouched()
        {
            var info = new FileInfo(_path);
            Assert.True(info.Exists || Directory.Exists(_path) || info.LinkTarget is not null, $"{_path} was removed");
            switch (_kind)
            {
                case "directory":
                    Assert.True(Directory.Exists(_path));
                    break;
                case "symlink":
                    Assert.NotNull(info.LinkTarget);
                    Assert.Equal(new byte[64 * 1024], File.ReadAllBytes(_decoy!));
                    break;
                default:
                    Assert.Null(info.LinkTarget);
                    break;
            }
        }

        public void Dispose()
        {
            _socket?.Dispose();
            if (Directory.Exists(_path) && new FileInfo(_path).LinkTarget is null)
            {
                Directory.Delete(_path);
            }
            else
            {
                File.Delete(_path);
            }

            if (_decoy is not null)
            {
                File.Delete(_decoy);
            }
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
        private static extern int MkFifo(string path, uint mode);
    }
}
