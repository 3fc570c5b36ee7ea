using SharedMemChannels.Segments;
using SharedMemChannels.Synchronization;

namespace SharedMemChannels;

/// <summary>
/// A named event in a segment, shared by processes: signaled or not, with manual reset (every waiter
/// passes while it is set, like <see cref="ManualResetEvent"/>) or auto reset (each <see cref="Set"/> lets
/// one waiter through and resets, like <see cref="AutoResetEvent"/>). eCAL's send / acknowledge events.
/// </summary>
/// <remarks>
/// Waiting spins a little, then sleeps in the kernel; an asynchronous wait is served by the process's
/// waiter thread, so no thread blocks per pending wait. A process that dies leaves the event as it was.
/// </remarks>
public sealed class SharedEvent : SharedSyncObject
{
    private static readonly Func<SyncCore, bool, TakeResult> s_take = Take;

    private SharedEvent(SyncCore core)
        : base(core)
    {
    }

    private protected override Func<SyncCore, bool, TakeResult> TakeStep => s_take;

    /// <summary>Whether the event resets itself when a wait succeeds (as stored with it).</summary>
    public bool AutoReset
    {
        get
        {
            using SegmentAttachment.Use use = Core.EnterUse();
            return (Core.Control.Flags & SyncControl.FlagAutoReset) != 0;
        }
    }

    /// <summary>Whether the event is set now.</summary>
    public bool IsSet
    {
        get
        {
            using SegmentAttachment.Use use = Core.EnterUse();
            Core.CheckIdentity();
            return Volatile.Read(ref Core.State) != 0;
        }
    }

    /// <summary>Creates the event <paramref name="name"/> in <paramref name="segment"/>.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Letters, digits, '.', '_' and '-'.</param>
    /// <param name="autoReset">True for an auto-reset event, false for manual reset.</param>
    /// <param name="initialState">Whether it starts set.</param>
    /// <exception cref="ArgumentException">The name is not valid.</exception>
    /// <exception cref="InvalidOperationException">An object of that name exists.</exception>
    public static SharedEvent Create(SharedSegment segment, string name, bool autoReset, bool initialState = false) =>
        new(SyncCore.Open(segment, name, SyncControl.KindEvent, Initial(autoReset, initialState), SyncCore.OpenMode.Create));

    /// <summary>Opens the existing event <paramref name="name"/> (with the reset mode it was made with).</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <exception cref="KeyNotFoundException">There is no such object.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedEvent Open(SharedSegment segment, string name) =>
        new(SyncCore.Open(segment, name, SyncControl.KindEvent, Initial(false, false), SyncCore.OpenMode.Open));

    /// <summary>Opens the event <paramref name="name"/>, or creates it: exactly one process creates.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    /// <param name="autoReset">The reset mode to create with, and to check an existing event against.</param>
    /// <param name="initialState">Whether it starts set, when created here.</param>
    /// <exception cref="ArgumentException">The existing event has the other reset mode.</exception>
    /// <exception cref="InvalidCastException">The object is another kind of synchronization object.</exception>
    public static SharedEvent OpenOrCreate(SharedSegment segment, string name, bool autoReset, bool initialState = false)
    {
        var made = new SharedEvent(SyncCore.Open(segment, name, SyncControl.KindEvent, Initial(autoReset, initialState), SyncCore.OpenMode.OpenOrCreate));
        if (made.AutoReset != autoReset)
        {
            made.Dispose();
            throw new ArgumentException($"Event '{name}' exists with {(autoReset ? "manual" : "auto")} reset.", nameof(autoReset));
        }

        return made;
    }

    /// <summary>Sets the event: waiters in every process pass (one of them, for auto reset). True if it was not set.</summary>
    public bool Set()
    {
        using SegmentAttachment.Use use = Core.EnterUse();
        Core.CheckIdentity();
        bool changed = Interlocked.Exchange(ref Core.State, 1) == 0;
        Core.Signal();
        return changed;
    }

    /// <summary>Resets the event. True if it was set.</summary>
    public bool Reset()
    {
        using SegmentAttachment.Use use = Core.EnterUse();
        Core.CheckIdentity();
        return Interlocked.Exchange(ref Core.State, 0) != 0;
    }

    /// <summary>Removes the event <paramref name="name"/> from <paramref name="segment"/>: its waiters fail. False when there is none.</summary>
    /// <param name="segment">The segment that holds it.</param>
    /// <param name="name">Its name.</param>
    public static bool Remove(SharedSegment segment, string name) => SyncCore.Remove(segment, name);

    private static SyncControl Initial(bool autoReset, bool initialState) => new()
    {
        Magic = SyncControl.MagicValue,
        Version = SyncControl.CurrentVersion,
        Kind = SyncControl.KindEvent,
        Flags = autoReset ? SyncControl.FlagAutoReset : 0,
        Maximum = 1,
        CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        State = initialState ? 1 : 0,
    };

    private static TakeResult Take(SyncCore core, bool afterSlice)
    {
        ref int state = ref core.State;
        if ((core.Control.Flags & SyncControl.FlagAutoReset) == 0)
        {
            return Volatile.Read(ref state) != 0 ? TakeResult.Taken : TakeResult.NotYet;
        }

        return Volatile.Read(ref state) != 0 && Interlocked.CompareExchange(ref state, 0, 1) == 1 ? TakeResult.Taken : TakeResult.NotYet;
    }
}
