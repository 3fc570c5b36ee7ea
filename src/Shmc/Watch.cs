using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SharedMemChannels;
using SharedMemChannels.Diagnostics;
using Spectre.Console;

namespace Shmc;

/// <summary>
/// <c>shmc watch</c>: samples a segment every interval through the public inspection API and shows rates
/// from one sample to the next: a live table on a terminal, a block per sample in a pipe, JSON Lines with
/// <c>--json</c>. Ctrl+C (or SIGTERM) ends it with exit 0; a segment that goes away or turns bad, with 1.
/// </summary>
internal static class Watch
{
    /// <summary>The longest interval: longer than that is a typo, not a watch.</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromHours(1);

    public static int Run(string name, SharedMemoryBackend? backend, TimeSpan interval, int? count, bool json)
    {
        using var stop = new CancellationTokenSource();
        // Ctrl+C is how a watch ends: stop sampling and exit 0, rather than let the runtime kill the process.
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using PosixSignalRegistration terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }

        var sampler = new Sampler(name, backend);
        if (json || Console.IsOutputRedirected)
        {
            using Stream stdout = OpenStandardOutput();
            using var writer = new StreamWriter(stdout) { AutoFlush = true };
            IAnsiConsole console = Output.For(writer);
            void Show(WatchSample s)
            {
                try
                {
                    if (json)
                    {
                        ShmcJsonContext.WriteLine(stdout, s, ShmcJsonContext.Lines.WatchSample);
                        return;
                    }

                    console.WriteLine(WatchView.Separator(s));
                    console.Write(WatchView.Render(s, interval, console.Profile.Width));
                }
                catch (IOException)
                {
                    stop.Cancel(); // the reader went away (`shmc watch NAME | head`): nobody is watching
                }
            }

            return sampler.Finish(sampler.Loop(interval, count, Show, waitFirst: false, stop.Token));
        }

        // On a terminal the first sample is taken before the live display starts, so that a missing
        // segment is one error line, not an empty display.
        if (sampler.Next() is not { } first)
        {
            return sampler.Finish(Program.ExitFailed);
        }

        int code = Program.ExitOk;
        Output.Console.Live(WatchView.Render(first, interval, Output.Console.Profile.Width)).Start(live =>
        {
            code = sampler.Loop(
                interval,
                count is { } c ? c - 1 : null,
                s =>
                {
                    live.UpdateTarget(WatchView.Render(s, interval, Output.Console.Profile.Width));
                    live.Refresh();
                },
                waitFirst: true,
                stop.Token);
        });
        return sampler.Finish(code);
    }

    /// <summary>
    /// Stdout as a stream of its own. Console's stream ignores a closed pipe (EPIPE), so that a watch piped
    /// into <c>head</c> would go on sampling for nobody; this one throws <see cref="IOException"/> instead.
    /// </summary>
    private static FileStream OpenStandardOutput() => new(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);

    /// <summary>
    /// Reads "500ms", "2s", "1.5s", "1m" or a number of seconds ("0.5"); false for anything else, for 0
    /// or less and for more than <see cref="MaxInterval"/>.
    /// </summary>
    public static bool TryParseInterval(string text, out TimeSpan interval)
    {
        interval = default;
        (string number, double unit) = text.Trim() switch
        {
            string t when t.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (t[..^2], 0.001),
            string t when t.EndsWith('s') || t.EndsWith('S') => (t[..^1], 1),
            string t when t.EndsWith('m') || t.EndsWith('M') => (t[..^1], 60),
            string t => (t, 1),
        };
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value))
        {
            return false;
        }

        double seconds = value * unit;
        if (!(seconds > 0 && seconds <= MaxInterval.TotalSeconds))
        {
            return false;
        }

        interval = TimeSpan.FromSeconds(seconds);
        return interval > TimeSpan.Zero; // below a tick it would round to nothing
    }

    /// <summary>Reads the segment again and again, keeping the previous report for the rates.</summary>
    private sealed class Sampler(string name, SharedMemoryBackend? backend)
    {
        /// <summary>How many reads in a row must find the segment damaged before the watch believes it.</summary>
        private const int DamagedReads = 3;

        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private SharedMemoryBackend? _backend = backend;
        private SegmentReport? _previous;
        private TimeSpan _previousAt;
        private string? _error;

        /// <summary>
        /// Samples <paramref name="count"/> times (forever when null) every <paramref name="interval"/>,
        /// handing each sample to <paramref name="show"/>; returns the exit code. With
        /// <paramref name="waitFirst"/> it waits an interval before the first (the caller took one already).
        /// </summary>
        public int Loop(TimeSpan interval, int? count, Action<WatchSample> show, bool waitFirst, CancellationToken stop)
        {
            // Samples are due at fixed times from the first, so that a slow read does not shift the rest.
            TimeSpan due = _clock.Elapsed + (waitFirst ? interval : TimeSpan.Zero);
            for (int taken = 0; count is null || taken < count; taken++)
            {
                TimeSpan wait = due - _clock.Elapsed;
                if (wait > TimeSpan.Zero && stop.WaitHandle.WaitOne(wait))
                {
                    break;
                }

                if (stop.IsCancellationRequested)
                {
                    break;
                }

                if (Next() is not { } sample)
                {
                    return Program.ExitFailed;
                }

                show(sample);
                due += interval;
                if (due < _clock.Elapsed)
                {
                    due = _clock.Elapsed; // fell behind (a stopped process, a huge segment): start again from now
                }
            }

            return Program.ExitOk;
        }

        /// <summary>The next sample, or null (and the error kept for <see cref="Finish"/>) when the segment is gone or not ready.</summary>
        public WatchSample? Next()
        {
            SegmentReport report;
            try
            {
                report = Inspect();
                // The heap and the directory are walked without their locks, so a walk torn by a concurrent
                // change can look damaged; real damage is still there when read again.
                for (int read = 1; report.Status == SegmentStatus.Damaged && read < DamagedReads; read++)
                {
                    report = Inspect();
                }
            }
            catch (FileNotFoundException)
            {
                _error = _previous is null ? $"no segment '{name}'" : $"segment '{name}' is gone";
                return null;
            }

            if (report.Status != SegmentStatus.Ready)
            {
                string what = report.Status switch
                {
                    SegmentStatus.Damaged => "damaged",
                    SegmentStatus.Initializing => "not initialized",
                    SegmentStatus.Foreign => "foreign",
                    SegmentStatus.OtherVersion => "of another version",
                    _ => "inaccessible",
                };
                _error = $"segment '{name}' {(_previous is null ? "is" : "became")} {what}: {report.Problem?.TrimEnd('.')}";
                return null;
            }

            TimeSpan at = _clock.Elapsed;
            WatchSample sample = WatchSample.From(report, DateTimeOffset.UtcNow, _previous, (at - _previousAt).TotalSeconds);
            // Stay with the backend the segment was found in: a same-named segment of the other one is not it.
            _backend = report.Backend;
            _previous = report;
            _previousAt = at;
            return sample;
        }

        /// <summary>Reports the error that ended the loop, if any, as one line (after a live display has ended, so that it stays on screen).</summary>
        public int Finish(int code) => _error is null ? code : Program.Fail(_error, Program.ExitFailed);

        private SegmentReport Inspect() => _backend is { } b ? SegmentDiagnostics.Inspect(name, b) : SegmentDiagnostics.Inspect(name);
    }
}
