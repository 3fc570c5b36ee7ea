using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// Wait and wake on a 32-bit word with Linux <c>futex(2)</c> and <c>futex_waitv(2)</c>.
/// The words live in <c>MAP_SHARED</c> mappings seen by several processes, so the PRIVATE flag is
/// never used: a private futex is keyed by the process's address space and a wake from another
/// process would never find the waiter.
/// </summary>
internal sealed unsafe class LinuxFutex : IWaitOnAddress
{
    private const int FUTEX_WAIT = 0;
    private const int FUTEX_WAKE = 1;
    private const uint FUTEX2_SIZE_U32 = 0x02;
    private const long SysFutexWaitv = 449; // the same number on x86-64 and arm64 (kernel 5.16+)

    private static readonly long SysFutex = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.Arm64 => 98,
        _ => throw new PlatformNotSupportedException(
            $"SharedMemChannels supports Linux on x64 and arm64; this process is {RuntimeInformation.ProcessArchitecture}."),
    };

    private int _waitvState; // 0 unknown, 1 available, -1 missing

    /// <inheritdoc />
    public int MaxWaitAny => 128;

    /// <inheritdoc />
    public bool SupportsWaitAny
    {
        get
        {
            int state = Volatile.Read(ref _waitvState);
            if (state == 0)
            {
                state = ProbeWaitv() ? 1 : -1;
                Volatile.Write(ref _waitvState, state);
            }

            return state > 0;
        }
    }

    /// <inheritdoc />
    public bool Wait(ref int word, int expected, TimeSpan? timeout)
    {
        long deadline = timeout is { } t ? Environment.TickCount64 * TimeSpan.TicksPerMillisecond + Math.Max(t.Ticks, 0) : long.MaxValue;
        int* address = (int*)Unsafe.AsPointer(ref word);
        while (true)
        {
            long result;
            if (deadline == long.MaxValue)
            {
                result = LibC.Syscall(SysFutex, (nint)address, FUTEX_WAIT, expected, 0, 0, 0);
            }
            else
            {
                long remaining = deadline - (Environment.TickCount64 * TimeSpan.TicksPerMillisecond);
                if (remaining <= 0)
                {
                    return false;
                }

                LibC.Timespec ts = LibC.Timespec.FromTicks(remaining);
                result = LibC.Syscall(SysFutex, (nint)address, FUTEX_WAIT, expected, (nint)(&ts), 0, 0);
            }

            if (result == 0)
            {
                return true;
            }

            int errno = Errno.Last;
            switch (errno)
            {
                case Errno.EAGAIN:
                    return true; // the word no longer held the expected value
                case Errno.EINTR:
                    continue; // a signal; wait again for what is left
                case Errno.ETIMEDOUT:
                    return false;
                default:
                    throw Errno.ToException(errno, "futex(FUTEX_WAIT)", "shared word");
            }
        }
    }

    /// <inheritdoc />
    public int Wake(ref int word, int count)
    {
        int* address = (int*)Unsafe.AsPointer(ref word);
        long result = LibC.Syscall(SysFutex, (nint)address, FUTEX_WAKE, count, 0, 0, 0);
        if (result < 0)
        {
            throw Errno.ToException(Errno.Last, "futex(FUTEX_WAKE)", "shared word");
        }

        return (int)result;
    }

    /// <inheritdoc />
    public int WaitAny(ReadOnlySpan<WaitTarget> targets, TimeSpan? timeout)
    {
        if (targets.Length == 0 || targets.Length > MaxWaitAny)
        {
            throw new ArgumentOutOfRangeException(nameof(targets), targets.Length, $"futex_waitv takes 1 to {MaxWaitAny} words.");
        }

        if (!SupportsWaitAny || ForceWaitAnyFallback)
        {
            return WaitAnyByPolling(targets, timeout);
        }

        FutexWaitv* waiters = stackalloc FutexWaitv[targets.Length];
        for (int i = 0; i < targets.Length; i++)
        {
            waiters[i] = new FutexWaitv
            {
                Value = (uint)targets[i].Expected,
                Address = (ulong)targets[i].Address,
                Flags = FUTEX2_SIZE_U32,
            };
        }

        LibC.Timespec deadline = default;
        LibC.Timespec* deadlinePointer = null;
        if (timeout is { } t)
        {
            // futex_waitv takes an absolute time on the clock it is given.
            LibC.Timespec now;
            LibC.ClockGetTime(LibC.CLOCK_MONOTONIC, &now);
            long totalNs = (now.Seconds * 1_000_000_000L) + now.Nanoseconds + (Math.Max(t.Ticks, 0) * 100);
            deadline = new LibC.Timespec { Seconds = totalNs / 1_000_000_000L, Nanoseconds = totalNs % 1_000_000_000L };
            deadlinePointer = &deadline;
        }

        while (true)
        {
            long result = LibC.Syscall(SysFutexWaitv, (nint)waiters, targets.Length, 0, (nint)deadlinePointer, LibC.CLOCK_MONOTONIC, 0);
            if (result >= 0)
            {
                return (int)result;
            }

            int errno = Errno.Last;
            switch (errno)
            {
                case Errno.EAGAIN:
                    return WaitAnyChanged; // one of the words no longer held its expected value
                case Errno.EINTR:
                    continue;
                case Errno.ETIMEDOUT:
                    return WaitAnyTimedOut;
                default:
                    throw Errno.ToException(errno, "futex_waitv", "shared words");
            }
        }
    }

    /// <summary>Returned by <see cref="WaitAny"/> when a word differed from its expected value (on entry, or seen by the fallback).</summary>
    public const int WaitAnyChanged = -1;

    /// <summary>Returned by <see cref="WaitAny"/> when the timeout passed.</summary>
    public const int WaitAnyTimedOut = -2;

    /// <summary>For tests: use the fallback even where futex_waitv exists.</summary>
    internal bool ForceWaitAnyFallback { get; set; }

    /// <summary>
    /// Where futex_waitv is missing (kernels before 5.16): sleep on the first word in short slices and
    /// look at all of them after each. Correct, with up to a slice of extra latency for the others.
    /// </summary>
    private int WaitAnyByPolling(ReadOnlySpan<WaitTarget> targets, TimeSpan? timeout)
    {
        long deadline = timeout is { } t ? Environment.TickCount64 + (long)Math.Ceiling(Math.Max(t.TotalMilliseconds, 0)) : long.MaxValue;
        while (true)
        {
            for (int i = 0; i < targets.Length; i++)
            {
                if (Volatile.Read(ref *(int*)targets[i].Address) != targets[i].Expected)
                {
                    return WaitAnyChanged;
                }
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return WaitAnyTimedOut;
            }

            ref int first = ref *(int*)targets[0].Address;
            if (Wait(ref first, targets[0].Expected, TimeSpan.FromMilliseconds(Math.Min(left, 2))) && Volatile.Read(ref first) != targets[0].Expected)
            {
                return 0;
            }
        }
    }

    private static bool ProbeWaitv()
    {
        // An empty wait list is EINVAL when the call exists and ENOSYS when it does not.
        long result = LibC.Syscall(SysFutexWaitv, 0, 0, 0, 0, 0, 0);
        return result >= 0 || Errno.Last != Errno.ENOSYS;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct FutexWaitv
    {
        public ulong Value;
        public ulong Address;
        public uint Flags;
        public uint Reserved;
    }
}
