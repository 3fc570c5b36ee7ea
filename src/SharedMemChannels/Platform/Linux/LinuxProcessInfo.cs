using System.Globalization;

namespace SharedMemChannels.Platform.Linux;

/// <summary>Process identity and liveness from <c>/proc</c>.</summary>
internal sealed class LinuxProcessInfo : IProcessInfo
{
    private readonly Lazy<ProcessIdentity> _current = new(ReadCurrent);

    /// <inheritdoc />
    public ProcessIdentity Current => _current.Value;

    /// <inheritdoc />
    public Liveness Probe(ProcessIdentity identity)
    {
        if (identity.Pid <= 0)
        {
            return Liveness.Dead;
        }

        // A pid from another pid namespace means nothing here: a process in a container that shares
        // /dev/shm is not dead just because its pid is free in ours.
        if (identity.PidNamespace != 0 && identity.PidNamespace != Current.PidNamespace)
        {
            return Liveness.Unknown;
        }

        if (!TryReadStat(identity.Pid, out char state, out ulong startTime))
        {
            return Liveness.Dead;
        }

        if (state is 'Z' or 'X' or 'x')
        {
            return Liveness.Dead; // exited; only its exit status is left for the parent to collect
        }

        if (identity.StartTime != 0 && startTime != identity.StartTime)
        {
            return Liveness.Dead; // the pid was reused by a newer process
        }

        return Liveness.Alive;
    }

    /// <summary>Reads the state letter and start time (field 22) of <c>/proc/&lt;pid&gt;/stat</c>.</summary>
    internal static bool TryReadStat(int pid, out char state, out ulong startTime)
    {
        state = '?';
        startTime = 0;
        string text;
        try
        {
            text = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/stat"));
        }
        catch (IOException)
        {
            return false; // FileNotFoundException and DirectoryNotFoundException included
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }

        return TryParseStat(text, out state, out startTime);
    }

    /// <summary>
    /// Parses a <c>/proc/&lt;pid&gt;/stat</c> line. The command name (field 2) is in parentheses and may
    /// itself hold spaces and parentheses, so the fields are counted from the last ')'.
    /// </summary>
    internal static bool TryParseStat(ReadOnlySpan<char> text, out char state, out ulong startTime)
    {
        state = '?';
        startTime = 0;
        int close = text.LastIndexOf(')');
        if (close < 0)
        {
            return false;
        }

        ReadOnlySpan<char> rest = text[(close + 1)..].TrimStart(' ');
        // Field 3 is the state; field 22 (start time) is 19 fields after it.
        for (int field = 3; field <= 22; field++)
        {
            int space = rest.IndexOf(' ');
            ReadOnlySpan<char> value = space < 0 ? rest : rest[..space];
            if (value.IsEmpty)
            {
                return false;
            }

            if (field == 3)
            {
                state = value[0];
            }
            else if (field == 22)
            {
                return ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out startTime);
            }

            if (space < 0)
            {
                return false;
            }

            rest = rest[(space + 1)..];
        }

        return false;
    }

    private static ProcessIdentity ReadCurrent()
    {
        int pid = Environment.ProcessId;
        if (!TryReadStat(pid, out _, out ulong startTime))
        {
            throw new IOException($"Cannot read /proc/{pid}/stat: SharedMemChannels needs a mounted /proc to tell live processes from dead ones.");
        }

        return new ProcessIdentity(pid, startTime, ReadPidNamespace());
    }

    private static ulong ReadPidNamespace()
    {
        // The link reads "pid:[4026531836]"; the number is the namespace's inode.
        try
        {
            string? target = new FileInfo("/proc/self/ns/pid").LinkTarget;
            if (target is not null)
            {
                int open = target.IndexOf('[', StringComparison.Ordinal);
                int close = target.IndexOf(']', StringComparison.Ordinal);
                if (open >= 0 && close > open &&
                    ulong.TryParse(target.AsSpan(open + 1, close - open - 1), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
                {
                    return inode;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0; // unknown: liveness then trusts pids as seen in this namespace
    }
}
