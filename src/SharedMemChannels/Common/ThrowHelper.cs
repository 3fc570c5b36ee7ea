using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace SharedMemChannels.Common;

/// <summary>
/// Every exception the library throws from a hot or shared path, built here so that the caller's
/// code stays small and inlinable: messages are formatted only on the throwing path, and the JIT
/// knows (<see cref="DoesNotReturnAttribute"/>, <see cref="MethodImplOptions.NoInlining"/>) that
/// the call never comes back.
/// </summary>
internal static class ThrowHelper
{
    /// <summary>A structure read from shared memory is damaged: a peer's bug, a crash, or a hostile writer.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowDamaged(string segmentName, string reason) =>
        throw new InvalidSegmentException(segmentName, reason);

    /// <summary>As <see cref="ThrowDamaged(string, string)"/>, for use in an expression.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static T ThrowDamaged<T>(string segmentName, string reason) =>
        throw new InvalidSegmentException(segmentName, reason);

    /// <summary>The caller passed a bad argument (a handle of another segment, a bad name...).</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowArgument(string message, string paramName) =>
        throw new ArgumentException(message, paramName);

    /// <summary>An argument out of its documented range.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowArgumentOutOfRange(string paramName, object? actual, string message) =>
        throw new ArgumentOutOfRangeException(paramName, actual, message);

    /// <summary>The call does not fit the object's state (a double free, a name taken...).</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowInvalidOperation(string message) =>
        throw new InvalidOperationException(message);

    /// <summary>The heap has no room and cannot grow.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowOutOfMemory(string message) =>
        throw new OutOfSharedMemoryException(message);

    /// <summary>The caller may not use the object: another user's, or not shared with this one.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowUnauthorized(string message) =>
        throw new UnauthorizedAccessException(message);

    /// <summary>An object found in shared memory is of another type than the caller asked for.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowInvalidCast(string message) =>
        throw new InvalidCastException(message);

    /// <summary>A handle that is null or names no block of this segment: the caller's argument.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowBadHandle(ShmHandle handle) =>
        throw new ArgumentException(
            handle.IsNull ? "The handle is null." : $"{handle} does not refer to a block of this segment.", nameof(handle));

    /// <summary>A handle to a block that is not allocated (any more): a double free or a stale handle.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotAllocated(ShmHandle handle) =>
        throw new InvalidOperationException($"{handle} refers to a block that is not allocated: it was freed already (a double free) or the handle is stale.");

    /// <summary>An allocation size out of range.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowSizeOutOfRange(int size, int max) =>
        throw new ArgumentOutOfRangeException(nameof(size), size, $"The size must be from 1 to {max} bytes.");

    /// <summary>The object was disposed.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowObjectDisposed(string objectName) =>
        throw new ObjectDisposedException(objectName);
}
