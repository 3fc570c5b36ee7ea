using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Shmc.Bench;

/// <summary>
/// The C references (<c>bench/native/*.c</c>, embedded in shmc): built at run time by the system C
/// compiler into a cache directory, run, and their one line of JSON read back. Without a compiler their
/// rows are "unavailable". The compiler is <c>$CC</c> when set, else the first of cc, gcc, clang on PATH.
/// </summary>
internal sealed class NativeReferences : IDisposable
{
    public const string RingId = "c-spsc-ring";
    public const string FutexId = "c-futex-pingpong";

    /// <summary>The flags every reference is built with.</summary>
    public const string Flags = "-std=c11 -O2";

    private readonly Dictionary<string, string> _binaries = [];
    private bool _resolved;
    private string? _compiler;
    private string? _unavailable;
    private string? _privateDirectory;

    /// <summary>The compiler's first line of <c>--version</c>, once resolved; null without one.</summary>
    public string? CompilerVersion { get; private set; }

    public BenchRow RunRing(BenchEntry entry, bool latency, BenchOptions options)
    {
        long requested = latency ? options.Messages : options.StreamMessages;
        return Run(entry, "spsc_ring", [latency ? "latency" : "stream", Number(requested), Number(options.Seconds)], latency, requested, options.Seconds);
    }

    public BenchRow RunFutex(BenchEntry entry, BenchOptions options) =>
        Run(entry, "futex_pingpong", [Number(options.Messages), Number(options.Seconds)], latency: true, options.Messages, options.Seconds);

    public void Dispose()
    {
        if (_privateDirectory is not null)
        {
            try
            {
                Directory.Delete(_privateDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private BenchRow Run(BenchEntry entry, string program, string[] args, bool latency, long requested, double seconds)
    {
        if (!OperatingSystem.IsLinux())
        {
            return BenchRow.Unavailable(entry, "unavailable (the C references are Linux programs)");
        }

        if (!TryResolveCompiler())
        {
            return BenchRow.Unavailable(entry, _unavailable!);
        }

        string binary = Build(program);
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The program bounds itself (10 s to start its child, warm-up, the cap, 2 s of grace, 5 s to reap).
        (int exitCode, string output, string errors) = RunProcess(start, TimeSpan.FromSeconds((seconds * 1.2) + 30));
        string? line = output.Split('\n').LastOrDefault(l => l.StartsWith('{'));
        if (line is null)
        {
            throw new InvalidOperationException($"{program} printed no result (exit {exitCode}): {errors.Trim()}");
        }

        using JsonDocument json = JsonDocument.Parse(line);
        JsonElement root = json.RootElement;
        if (root.TryGetProperty("error", out JsonElement error) || exitCode != 0)
        {
            throw new InvalidOperationException($"{program} failed (exit {exitCode}): {(error.ValueKind == JsonValueKind.String ? error.GetString() : errors.Trim())}");
        }

        long measured = root.GetProperty("messages").GetInt64();
        if (latency)
        {
            var result = new LatencyResult(measured, root.GetProperty("median_ns").GetDouble(), root.GetProperty("p99_ns").GetDouble(), root.GetProperty("mean_ns").GetDouble());
            return BenchRow.FromLatency(entry, result, requested, PingPong.CountNote(measured, requested, "round trips"));
        }

        return BenchRow.FromThroughput(entry, measured, root.GetProperty("seconds").GetDouble(), requested, PingPong.CountNote(measured, requested, "messages"));
    }

    [SupportedOSPlatform("linux")]
    private bool TryResolveCompiler()
    {
        if (_resolved)
        {
            return _compiler is not null;
        }

        _resolved = true;
        string? fromEnvironment = Environment.GetEnvironmentVariable("CC");
        string[] candidates = string.IsNullOrWhiteSpace(fromEnvironment) ? ["cc", "gcc", "clang"] : [fromEnvironment.Trim()];
        _compiler = candidates.Select(FindExecutable).FirstOrDefault(p => p is not null);
        if (_compiler is null)
        {
            _unavailable = string.IsNullOrWhiteSpace(fromEnvironment)
                ? "unavailable (no C compiler: none of cc, gcc, clang on PATH)"
                : $"unavailable (no C compiler: CC='{fromEnvironment}' not found)";
            return false;
        }

        (int exitCode, string output, _) = RunProcess(new ProcessStartInfo(_compiler, "--version") { RedirectStandardOutput = true, RedirectStandardError = true }, TimeSpan.FromSeconds(30));
        CompilerVersion = output.Split('\n')[0].Trim();
        if (exitCode != 0)
        {
            _unavailable = $"unavailable (C compiler '{_compiler}' did not run)";
            _compiler = null;
            return false;
        }

        return true;
    }

    /// <summary>Builds one reference, or finds it built by an earlier run; returns the executable's path.</summary>
    [SupportedOSPlatform("linux")]
    private string Build(string program)
    {
        if (_binaries.TryGetValue(program, out string? built))
        {
            return built;
        }

        string source = ReadResource($"{program}.c");
        string header = ReadResource(CommonHeader);
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{source}\n{header}\n{_compiler}\n{CompilerVersion}\n{Flags}")))[..16];
        string directory = CacheDirectory();
        string binary = Path.Combine(directory, $"{program}-{key}");
        if (!File.Exists(binary))
        {
            // Build under names of this process and rename: concurrent runs never see a half-written binary.
            string suffix = string.Create(CultureInfo.InvariantCulture, $".{Environment.ProcessId}");
            string buildDirectory = Path.Combine(directory, $"build-{program}-{key}{suffix}");
            Directory.CreateDirectory(buildDirectory);
            string sourcePath = Path.Combine(buildDirectory, $"{program}.c");
            string temporary = binary + suffix + ".tmp";
            File.WriteAllText(sourcePath, source);
            File.WriteAllText(Path.Combine(buildDirectory, CommonHeader), header);
            try
            {
                var start = new ProcessStartInfo(_compiler!) { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (string arg in Flags.Split(' '))
                {
                    start.ArgumentList.Add(arg);
                }

                start.ArgumentList.Add("-o");
                start.ArgumentList.Add(temporary);
                start.ArgumentList.Add(sourcePath);
                (int exitCode, string output, string errors) = RunProcess(start, TimeSpan.FromSeconds(120));
                if (exitCode != 0)
                {
                    string first = (errors + output).Split('\n').FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)) ?? errors.Trim();
                    throw new InvalidOperationException($"compiling {program}.c with {_compiler} failed: {first.Trim()}");
                }

                File.Move(temporary, binary, overwrite: true);
            }
            finally
            {
                Directory.Delete(buildDirectory, recursive: true);
                File.Delete(temporary);
            }
        }

        _binaries[program] = binary;
        return binary;
    }

    /// <summary>
    /// $XDG_CACHE_HOME/shmc/bench, else ~/.cache/shmc/bench (made 0700). Without either, or when it
    /// cannot be made, a private directory of this run, removed at the end: never a guessable shared
    /// path in /tmp that another user could have filled first.
    /// </summary>
    [SupportedOSPlatform("linux")]
    private string CacheDirectory()
    {
        if (_privateDirectory is not null)
        {
            return _privateDirectory;
        }

        string? root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { } xdg && Path.IsPathFullyQualified(xdg) ? xdg
            : Environment.GetEnvironmentVariable("HOME") is { } home && Path.IsPathFullyQualified(home) && Directory.Exists(home) ? Path.Combine(home, ".cache")
            : null;
        if (root is not null)
        {
            try
            {
                string directory = Path.Combine(root, "shmc", "bench");
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                return directory;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        _privateDirectory = Directory.CreateTempSubdirectory("shmc-bench-").FullName;
        return _privateDirectory;
    }

    /// <summary>The header the C references share (bench/native/bench_common.h), written beside each source when it is built.</summary>
    private const string CommonHeader = "bench_common.h";

    private static string ReadResource(string file)
    {
        string name = $"Shmc.Bench.Native.{file}";
        using Stream stream = typeof(NativeReferences).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"shmc was built without {name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    [SupportedOSPlatform("linux")]
    private static string? FindExecutable(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return IsExecutable(name) ? Path.GetFullPath(name) : null;
        }

        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, name);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    [SupportedOSPlatform("linux")]
    private static bool IsExecutable(string path) =>
        File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;

    /// <summary>Runs a program to its end, killing it after <paramref name="timeout"/>.</summary>
    private static (int ExitCode, string Output, string Errors) RunProcess(ProcessStartInfo start, TimeSpan timeout)
    {
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{Path.GetFileName(start.FileName)} did not finish in {timeout.TotalSeconds:0} s and was killed");
        }

        process.WaitForExit();
        return (process.ExitCode, output.Result, errors.Result);
    }

    private static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);
}
