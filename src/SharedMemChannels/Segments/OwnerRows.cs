namespace SharedMemChannels.Segments;

/// <summary>
/// Tables of rows whose first word is an <see cref="OwnerId"/> (0 for a free row): a channel's endpoints,
/// a topic's references and subscribers. A row is claimed by one CAS, from free or (on a second pass) from
/// a dead process; what a table counts is its live and dead owners. Where row <c>i</c> lies is the table's
/// descriptor's to say (the rowOffset each call is given), not computed here.
/// </summary>
internal static class OwnerRows
{
    /// <summary>Claims a row for this process: a free one, else one a dead process left; -1 when every row is live.</summary>
    /// <param name="segment">The attachment whose owner id goes in.</param>
    /// <param name="table">The table's block (the control block that holds it).</param>
    /// <param name="count">The rows of the table.</param>
    /// <param name="rowOffset">The descriptor's offset of row i from the table's block.</param>
    public static int Claim(SegmentAttachment segment, long table, int count, Func<long, int, long> rowOffset) =>
        Claim(segment, table, count, rowOffset, out _);

    /// <summary>As <see cref="Claim(SegmentAttachment, long, int, Func{long, int, long})"/>, saying whose row it was (0 for a free one).</summary>
    /// <param name="segment">The attachment whose owner id goes in.</param>
    /// <param name="table">The table's block.</param>
    /// <param name="count">The rows of the table.</param>
    /// <param name="rowOffset">The descriptor's offset of row i from the table's block.</param>
    /// <param name="replaced">The dead (or impossible) owner whose row was taken over; 0 for a free row.</param>
    public static int Claim(SegmentAttachment segment, long table, int count, Func<long, int, long> rowOffset, out uint replaced)
    {
        uint me = segment.Owner.Value;
        replaced = 0;
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < count; i++)
            {
                ref uint owner = ref segment.Memory.Ref<uint>(rowOffset(table, i));
                uint seen = Volatile.Read(ref owner);
                bool free = seen == 0 || (pass == 1 && seen != me && !segment.Processes.IsAlive(new OwnerId(seen)));
                if (free && Interlocked.CompareExchange(ref owner, me, seen) == seen)
                {
                    replaced = seen;
                    return i;
                }
            }
        }

        return -1;
    }

    /// <summary>
    /// How many rows live processes hold, how many dead ones left, and how many name an owner the process
    /// table never had (<see cref="ProcessTable.CouldHaveBeen"/>: damage, counted apart from the dead so that
    /// a damaged word never passes for a dead holder whose reference may be dropped).
    /// </summary>
    public static (int Live, int Dead, int Damaged) Census(SegmentAttachment segment, long table, int count, Func<long, int, long> rowOffset)
    {
        int live = 0;
        int dead = 0;
        int damaged = 0;
        for (int i = 0; i < count; i++)
        {
            var owner = new OwnerId(Volatile.Read(ref segment.Memory.Ref<uint>(rowOffset(table, i))));
            if (owner.IsNone)
            {
                continue;
            }

            if (segment.Processes.IsAlive(owner))
            {
                live++;
            }
            else if (segment.Processes.CouldHaveBeen(owner))
            {
                dead++;
            }
            else
            {
                damaged++;
            }
        }

        return (live, dead, damaged);
    }

    /// <summary>How many rows live processes hold, and how many dead ones left.</summary>
    public static (int Live, int Dead) Count(SegmentAttachment segment, long table, int count, Func<long, int, long> rowOffset)
    {
        int live = 0;
        int dead = 0;
        for (int i = 0; i < count; i++)
        {
            uint owner = Volatile.Read(ref segment.Memory.Ref<uint>(rowOffset(table, i)));
            if (owner != 0)
            {
                if (segment.Processes.IsAlive(new OwnerId(owner)))
                {
                    live++;
                }
                else
                {
                    dead++;
                }
            }
        }

        return (live, dead);
    }
}
