namespace SharedMemChannels.Segments;

/// <summary>
/// Points where the test host can stop a process at a chosen moment (to be killed there). Null, and
/// never called, outside tests.
/// </summary>
internal static class SegmentTestHooks
{
    /// <summary>Called by a creator after writing the header and before marking it ready.</summary>
    public static Action<string>? BeforeReady { get; set; }

    /// <summary>Raised each time an opener sleeps because another process is initializing the segment.</summary>
    public static event Action<string>? WaitingForCreator;

    internal static void OnWaitingForCreator(string name) => WaitingForCreator?.Invoke(name);
}
