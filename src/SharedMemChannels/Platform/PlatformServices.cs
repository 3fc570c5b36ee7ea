using System.Runtime.InteropServices;
using SharedMemChannels.Platform.Linux;

namespace SharedMemChannels.Platform;

/// <summary>The one place that picks the operating-system implementations.</summary>
internal static class PlatformServices
{
    private static readonly Lazy<IWaitOnAddress> FutexInstance = new(() => { EnsureSupported(); return new LinuxFutex(); });
    private static readonly Lazy<IProcessInfo> ProcessInstance = new(() => { EnsureSupported(); return new LinuxProcessInfo(); });
    private static readonly Lazy<SharedMemoryProvider> PosixInstance = new(() => { EnsureSupported(); return new PosixSharedMemoryProvider(); });
    private static readonly Lazy<IThreadExits> ThreadExitsInstance = new(() => { EnsureSupported(); return new LinuxThreadExits(); });
    private static readonly Lazy<SharedMemoryProvider> SystemVInstance = new(() => { EnsureSupported(); return new SystemVSharedMemoryProvider(); });

    /// <summary>Wait and wake on shared words.</summary>
    public static IWaitOnAddress Futex => FutexInstance.Value;

    /// <summary>Process identity and liveness.</summary>
    public static IProcessInfo Processes => ProcessInstance.Value;

    /// <summary>Notice of this process's threads ending.</summary>
    public static IThreadExits ThreadExits => ThreadExitsInstance.Value;

    /// <summary>The provider of a shared-memory facility.</summary>
    public static SharedMemoryProvider GetProvider(SharedMemoryBackend backend) => backend switch
    {
        SharedMemoryBackend.Posix => PosixInstance.Value,
        SharedMemoryBackend.SystemV => SystemVInstance.Value,
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, "Unknown shared-memory backend."),
    };

    /// <summary>Throws <see cref="PlatformNotSupportedException"/> off Linux x64/arm64.</summary>
    public static void EnsureSupported()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException(
                $"SharedMemChannels runs on Linux (x64 and arm64) in this version; {RuntimeInformation.OSDescription} has no backend yet.");
        }

        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            throw new PlatformNotSupportedException(
                $"SharedMemChannels runs on Linux x64 and arm64; this process is {RuntimeInformation.ProcessArchitecture}.");
        }
    }
}
