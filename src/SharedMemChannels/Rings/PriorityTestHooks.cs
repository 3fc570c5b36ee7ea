namespace SharedMemChannels.Rings;

/// <summary>
/// Where the crash tests stop a prioritized channel's update: <see cref="Step"/> is called after every
/// store of an insert, remove or resize made under the heap lock (the test host kills its own process
/// there, or a test copies the memory as a process killed there would leave it). Null, and a load and a
/// branch per store, outside tests.
/// </summary>
internal static class PriorityTestHooks
{
    /// <summary>Called after each store of a locked update.</summary>
    public static Action? Step { get; set; }

    internal static void Stepped() => Step?.Invoke();
}
