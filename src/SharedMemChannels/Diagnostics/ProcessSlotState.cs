namespace SharedMemChannels.Diagnostics;

/// <summary>The state of a process-table slot in use.</summary>
public enum ProcessSlotState
{
    /// <summary>A process is attaching: it has claimed the slot and is filling in its identity.</summary>
    Claiming,

    /// <summary>A process is attached.</summary>
    Attached,

    /// <summary>The slot's process died and another process is releasing what it held.</summary>
    Reclaiming,

    /// <summary>The slot holds a state this layout does not define: the table is damaged.</summary>
    Invalid,
}
