using System.Runtime.InteropServices;

namespace SharedMemChannels.Platform;

/// <summary>
/// The one table that turns an <c>errno</c> into the exception a .NET caller expects.
/// </summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int EWOULDBLOCK = EAGAIN;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EEXIST = 17;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EIDRM = 43;
    public const int EOPNOTSUPP = 95;
    public const int ETIMEDOUT = 110;

    /// <summary>The <c>errno</c> of the last native call made with <c>SetLastError = true</c>.</summary>
    public static int Last => Marshal.GetLastPInvokeError();

    /// <summary>Describes an errno the way <c>strerror</c> does.</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Builds the exception for a failed native call on <paramref name="subject"/>.</summary>
    /// <param name="errno">The error number.</param>
    /// <param name="operation">The call that failed, as in <c>shm_open</c>.</param>
    /// <param name="subject">What it was called on: a segment name, a path.</param>
    public static Exception ToException(int errno, string operation, string subject)
    {
        string message = $"{operation} failed for '{subject}': {Describe(errno)} (errno {errno}).";
        return errno switch
        {
            ENOENT => new FileNotFoundException(message, subject),
            EACCES or EPERM => new UnauthorizedAccessException(message),
            EEXIST => new IOException(message, errno),
            ENOSPC or ENOMEM or EFBIG => new OutOfSharedMemoryException(message),
            EINVAL => new ArgumentException(message),
            ENAMETOOLONG => new PathTooLongException(message),
            ENOSYS or EOPNOTSUPP => new PlatformNotSupportedException(message),
            _ => new IOException(message, errno),
        };
    }

    /// <summary>Builds the exception for the last native error.</summary>
    public static Exception LastError(string operation, string subject) => ToException(Last, operation, subject);
}
