using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;

namespace SharedMemChannels.Samples;

/// <summary>
/// One role of a sample running as a child process of the sample itself: the same program started again
/// with the role's name as its first argument (as <c>dotnet Sample.dll role ...</c> when it runs that
/// way). Its output lines are collected, echoed with the role's name in front (unless a filter says
/// not to), and can be waited for; every wait is bounded, so a sample never hangs on a broken child.
/// Disposing kills the child if it still runs.
/// </summary>
internal sealed class RoleProcess : IDisposable
{
    /// <summary>How long a sample waits for a child at most: generous, for a loaded machine.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private readonly Process _process;
    private readonly Channel<string> _pending = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly List<string> _lines = [];
    private readonly Func<string, bool> _echo;

    private RoleProcess(string label, Func<string, bool>? echo, string[] args)
    {
        Label = label;
        _echo = echo ?? (_ => true);
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
            start.ArgumentList.Add(typeof(RoleProcess).Assembly.Location); // running as "dotnet Sample.dll"
        }

        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, error: false);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, error: true);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The name printed in front of the child's lines, e.g. "consumer-1".</summary>
    public string Label { get; }

    /// <summary>The child's process id.</summary>
    public int Id => _process.Id;

    /// <summary>Every line the child printed on its standard output so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>Starts this program again in <paramref name="role"/> (its first argument), with <paramref name="args"/> after it.</summary>
    /// <param name="label">The name shown in front of its lines.</param>
    /// <param name="echo">Which of its lines to show here (all when null); all are kept in <see cref="Lines"/>.</param>
    /// <param name="role">The role argument.</param>
    /// <param name="args">The role's arguments.</param>
    public static RoleProcess Start(string label, Func<string, bool>? echo, string role, params string[] args)
    {
        var child = new RoleProcess(label, echo, [role, .. args]);
        Console.WriteLine($"started {label} (process {child.Id})");
        return child;
    }

    /// <summary>Waits for a line starting with <paramref name="prefix"/> and returns it.</summary>
    /// <exception cref="TimeoutException">It did not come within <see cref="Timeout"/>, or the child ended first.</exception>
    public async Task<string> WaitForLineAsync(string prefix)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await foreach (string line in _pending.Reader.ReadAllAsync(timeout.Token).ConfigureAwait(false))
            {
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return line;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        throw new TimeoutException($"{Label} did not print '{prefix}...' (it ended, or {Timeout.TotalSeconds:F0} s passed).");
    }

    /// <summary>Sends one line to the child's standard input.</summary>
    public void Send(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits for the child to exit and returns its exit code; kills it after <see cref="Timeout"/>.</summary>
    /// <exception cref="TimeoutException">It did not exit in time (it is killed).</exception>
    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{Label} did not exit within {Timeout.TotalSeconds:F0} s; it was killed.");
        }

        _process.WaitForExit(); // drains the output streams
        return _process.ExitCode;
    }

    /// <summary>Waits for the child's exit and fails unless it exited with 0.</summary>
    /// <exception cref="InvalidOperationException">It exited with another code.</exception>
    public async Task ExpectSuccessAsync()
    {
        int code = await WaitForExitAsync().ConfigureAwait(false);
        if (code != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{Label} exited with code {code}."));
        }

        Console.WriteLine($"{Label} exited with code 0");
    }

    /// <summary>Kills the child (and anything it started) if it still runs.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void OnLine(string? line, bool error)
    {
        if (line is null)
        {
            if (!error)
            {
                _pending.Writer.TryComplete();
            }

            return;
        }

        if (error)
        {
            Console.Error.WriteLine($"{Label,-11}| {line}");
            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
        }

        if (_echo(line))
        {
            Console.WriteLine($"{Label,-11}| {line}");
        }

        _pending.Writer.TryWrite(line);
    }
}
