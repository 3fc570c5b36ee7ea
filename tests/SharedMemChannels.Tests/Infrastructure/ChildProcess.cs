using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace SharedMemChannels.Tests.Infrastructure;

/// <summary>
/// A real child process: the test host (or shmc) started with redirected streams. Tests wait for the
/// line a role prints when it reaches a state, never for time. Disposing kills the process if it runs.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    /// <summary>How long a test waits for a child to say something: generous, for a loaded 2-core machine.</summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(90);

    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = [];
    private readonly StringBuilder _transcript = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(ProcessStartInfo start)
    {
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _lines.CompleteAdding();
                return;
            }

            lock (_transcript)
            {
                _transcript.AppendLine(e.Data);
            }

            _lines.Add(e.Data);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_transcript)
                {
                    _transcript.Append("stderr: ").AppendLine(e.Data);
                }
            }
        };
        _process.Exited += (_, _) => _exited.TrySetResult();
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Transcript
    {
        get
        {
            lock (_transcript)
            {
                return _transcript.ToString();
            }
        }
    }

    /// <summary>Starts the test host in the given role.</summary>
    public static ChildProcess Host(params string[] args) => new(DotnetStart(HostDll, args));

    /// <summary>Starts the test host as another user (root can do this with setpriv).</summary>
    public static ChildProcess HostAsUser(int uid, int gid, params string[] args)
    {
        var start = new ProcessStartInfo("setpriv");
        foreach (string arg in new[] { $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "--", DotnetPath, HostDll })
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HOME"] = "/tmp";
        start.Environment["DOTNET_CLI_HOME"] = "/tmp";
        return new ChildProcess(start);
    }

    /// <summary>Starts the shmc tool.</summary>
    public static ChildProcess Shmc(params string[] args) => new(DotnetStart(Path.Combine(AppContext.BaseDirectory, "shmc.dll"), args));

    /// <summary>Starts the shmc tool with these environment variables set (COLUMNS, for example).</summary>
    public static ChildProcess Shmc(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        ProcessStartInfo start = DotnetStart(Path.Combine(AppContext.BaseDirectory, "shmc.dll"), args);
        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        return new ChildProcess(start);
    }

    /// <summary>Starts the dotnet CLI itself (for example <c>dotnet msbuild ...</c>) in <paramref name="workingDirectory"/>.</summary>
    public static ChildProcess Dotnet(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(DotnetPath) { WorkingDirectory = workingDirectory };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return new ChildProcess(start);
    }

    /// <summary>Waits for a line that starts with <paramref name="prefix"/> and returns it.</summary>
    public string WaitForLine(string prefix, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? DefaultWait;
        long end = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (true)
        {
            TimeSpan left = TimeSpan.FromMilliseconds(end - Environment.TickCount64);
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Child {Pid} did not print a line starting with '{prefix}' in {limit}. Output so far:\n{Transcript}");
            }

            if (!_lines.TryTake(out string? line, left))
            {
                continue;
            }

            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }

            if (line.StartsWith("error ", StringComparison.Ordinal) && !prefix.StartsWith("error", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Child {Pid} failed while we waited for '{prefix}': {line}\n{Transcript}");
            }
        }
    }

    /// <summary>
    /// Takes the next line the child printed, waiting as long as it takes; null once its output has
    /// ended (or the child was disposed). For a reader that consumes every line itself (a protocol).
    /// </summary>
    public string? ReadLine()
    {
        try
        {
            return _lines.TryTake(out string? line, Timeout.Infinite) ? line : null;
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>Sends one line to the child's stdin.</summary>
    public void Send(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Closes stdin, waits for the exit, returns the exit code.</summary>
    public int Finish(TimeSpan? timeout = null)
    {
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        return WaitForExit(timeout);
    }

    /// <summary>Waits for the child to exit on its own and returns its exit code.</summary>
    public int WaitForExit(TimeSpan? timeout = null)
    {
        if (!_exited.Task.Wait(timeout ?? DefaultWait))
        {
            throw new TimeoutException($"Child {Pid} did not exit. Output so far:\n{Transcript}");
        }

        _process.WaitForExit(); // drains the output streams
        return _process.ExitCode;
    }

    /// <summary>Kills the child with SIGKILL and reaps it.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _lines.Dispose();
    }

    private static string HostDll => Path.Combine(AppContext.BaseDirectory, "SharedMemChannels.TestHost.dll");

    private static string DotnetPath =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path
        : "dotnet";

    private static ProcessStartInfo DotnetStart(string dll, string[] args)
    {
        var start = new ProcessStartInfo(DotnetPath);
        start.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }
}
