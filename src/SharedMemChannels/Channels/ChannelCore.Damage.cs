using SharedMemChannels.Common;
using SharedMemChannels.Rings;

namespace SharedMemChannels.Channels;

/// <content>
/// What a control block may hold at all, whatever the type of the process reading it. A value no
/// initializer can have written is damage (<see cref="InvalidSegmentException"/>); only a possible value
/// that differs from this process's type or options is <see cref="InvalidCastException"/> or
/// <see cref="ArgumentException"/>. Checked before any such comparison, so that garbage is never
/// reported as "another element type".
/// </content>
internal sealed partial class ChannelCore<T>
{
    private void CheckStoredValues()
    {
        ref ChannelControl c = ref Control;
        if (Volatile.Read(ref c.Magic) != ChannelControl.MagicValue || c.Version != ChannelControl.CurrentVersion)
        {
            Damaged("its magic number or version");
        }

        int size = c.ElementSize;
        if (size is < 1 or > RingLayout.MaxElementSize)
        {
            Damaged($"element size {size}");
        }

        if (c.ElementKind is not (ChannelControl.ElementKindPlain or ChannelControl.ElementKindRecords or ChannelControl.ElementKindSerialized))
        {
            Damaged($"element kind {c.ElementKind}");
        }

        int count = c.OwnedHandleCount;
        if ((uint)count > ChannelControl.MaxOwnedHandles)
        {
            Damaged($"owned-handle count {count}");
        }

        // An owned handle is an 8-byte word inside the element; the table's unused entries are zero.
        for (int i = 0; i < ChannelControl.MaxOwnedHandles; i++)
        {
            int offset = _segment.Memory.Int32(ChannelLayout.OwnedHandleOffset(_control, i));
            if (i < count ? offset < 0 || offset > size - sizeof(ulong) : offset != 0)
            {
                Damaged($"owned-handle entry {i}: offset {offset} in an element of {size} bytes");
            }
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Damaged(string what) =>
        ThrowHelper.ThrowDamaged(_segment.Name, $"channel '{Name}' has a damaged control block ({what}).");
}
