using SharedMemChannels.Common;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace SharedMemChannels.Objects;

/// <summary>
/// The layout identity of an unmanaged type as it sits in shared memory: its size and, for every
/// primitive leaf field, its offset and kind, hashed into a 64-bit fingerprint. Structural on purpose:
/// two processes that each declare the same struct (in their own assemblies, under their own names)
/// agree; a struct with a field added, removed, retyped or moved does not. The library's own
/// containers count as their own kinds, element type included, so a vector of int is not a vector
/// of long. Computed once per type.
/// </summary>
internal static class TypeLayout<T>
    where T : unmanaged
{
    private static TypeLayoutInfo? s_info;

    private static OwnedLayout? s_owned;

    /// <summary>The layout of <typeparamref name="T"/>; throws <see cref="ArgumentException"/> for a type that cannot live in shared memory.</summary>
    public static TypeLayoutInfo Info => s_info ??= TypeLayout.Describe(typeof(T));

    /// <summary>
    /// The offsets inside <typeparamref name="T"/> of the heap handles it owns: each <see cref="ShmString"/>
    /// and <see cref="ShmVector{T}"/> field, nested structs included, in offset order.
    /// </summary>
    public static int[] OwnedHandleOffsets => Owned.Offsets;

    /// <summary>The handles <typeparamref name="T"/> owns and how deep the vectors among them nest.</summary>
    public static OwnedLayout Owned => s_owned ??= TypeLayout.Owned(typeof(T));

    /// <summary>
    /// The nesting a <see cref="ShmVector{T}"/> of <typeparamref name="T"/> records in its storage: 0 when
    /// <typeparamref name="T"/> owns nothing, else one more than the deepest vector among its fields.
    /// </summary>
    public static int VectorNesting => Owned.Offsets.Length == 0 ? 0 : 1 + Owned.Depth;
}

/// <summary>The heap handles a type owns.</summary>
/// <param name="Offsets">Offsets of its <see cref="ShmString"/> and <see cref="ShmVector{T}"/> fields (nested structs and inline arrays included), sorted.</param>
/// <param name="Depth">The deepest nesting among those fields' containers: 0 for strings and vectors of plain elements, n + 1 for a vector of elements of depth n that own storage.</param>
internal sealed record OwnedLayout(int[] Offsets, int Depth);

/// <summary>The layout identity of a type.</summary>
/// <param name="Size">Bytes the type occupies.</param>
/// <param name="Fingerprint">Hash of the structural description.</param>
/// <param name="Description">The structural description, for messages.</param>
/// <param name="DisplayName">The type's name, for people.</param>
internal sealed record TypeLayoutInfo(int Size, ulong Fingerprint, string Description, string DisplayName)
{
    /// <summary>The low 32 bits of the fingerprint, kept in block headers.</summary>
    public uint Tag => (uint)Fingerprint | 1; // never 0, which means "untyped"
}

/// <summary>Builds <see cref="TypeLayoutInfo"/>s.</summary>
internal static class TypeLayout
{
    public static TypeLayoutInfo Describe(Type type)
    {
        var description = new StringBuilder();
        Append(type, description, 0);
        string text = description.ToString();
        return new TypeLayoutInfo(SizeOf(type), Fnv1a.Hash64(text), text, type.FullName ?? type.Name);
    }

    /// <summary>
    /// The offsets inside <paramref name="type"/> of the heap handles it owns (<see cref="ShmString"/> and
    /// <see cref="ShmVector{T}"/> fields, nested structs and inline arrays included), sorted.
    /// </summary>
    public static int[] OwnedHandleOffsets(Type type) => Owned(type).Offsets;

    /// <summary>
    /// The handles <paramref name="type"/> owns and the depth of its nested vectors. A vector of elements
    /// that own storage is fine (its storage records their table, so it is freed with what they own); one
    /// nested deeper than <see cref="ContainerStorage.MaxNesting"/> levels (a recursive type is), or whose
    /// elements own more than <see cref="ContainerStorage.MaxOwnedPerElement"/> handles, is an
    /// <see cref="ArgumentException"/>.
    /// </summary>
    public static OwnedLayout Owned(Type type) => Owned(type, type, 0);

    private static OwnedLayout Owned(Type type, Type root, int level)
    {
        var offsets = new List<int>();
        int depth = 0;
        CollectOwned(type, 0, offsets, ref depth, root, level);
        offsets.Sort();
        return new OwnedLayout([.. offsets], depth);
    }

    private static void CollectOwned(Type type, int at, List<int> offsets, ref int depth, Type root, int level)
    {
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ShmVector<>))
        {
            Type element = type.GetGenericArguments()[0];
            if (level >= ContainerStorage.MaxNesting)
            {
                throw new ArgumentException(
                    $"Type {root} nests vectors of elements that own storage more than {ContainerStorage.MaxNesting} levels deep (or is recursive: a vector of itself): " +
                    "freeing it must walk every level, and shared memory cannot be trusted to end such a walk.");
            }

            OwnedLayout inner = Owned(element, root, level + 1);
            if (inner.Offsets.Length > ContainerStorage.MaxOwnedPerElement)
            {
                throw new ArgumentException(
                    $"Type {root} has a {type.Name} of {element}, whose elements own {inner.Offsets.Length} handles: a vector's storage records at most {ContainerStorage.MaxOwnedPerElement}.");
            }

            offsets.Add(at);
            depth = Math.Max(depth, inner.Offsets.Length == 0 ? 0 : 1 + inner.Depth);
            return;
        }

        if (type == typeof(ShmString))
        {
            offsets.Add(at);
            return;
        }

        if (type == typeof(ShmHandle) || LeafCode(type) is not null || !type.IsValueType || type.IsPointer)
        {
            return;
        }

        List<(int Offset, FieldInfo Field)> fields = FieldsByOffset(type);
        var inline = type.GetCustomAttribute<InlineArrayAttribute>();
        if (inline is not null && fields.Count == 1)
        {
            int stride = SizeOf(fields[0].Field.FieldType);
            for (int i = 0; i < inline.Length; i++)
            {
                CollectOwned(fields[0].Field.FieldType, at + (i * stride), offsets, ref depth, root, level);
            }

            return;
        }

        foreach ((int offset, FieldInfo field) in fields)
        {
            CollectOwned(field.FieldType, at + offset, offsets, ref depth, root, level);
        }
    }

    /// <summary>Vectors of vectors this deep are refused: only a recursive type (a vector of itself) gets there.</summary>
    private const int MaxVectorLevels = 32;

    private static void Append(Type type, StringBuilder description, int vectors)
    {
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ShmVector<>))
        {
            if (vectors >= MaxVectorLevels)
            {
                throw new ArgumentException($"Type {type} nests vectors {MaxVectorLevels} levels deep: a recursive type (a vector of itself) has no layout in shared memory.");
            }

            description.Append("vec<");
            Append(type.GetGenericArguments()[0], description, vectors + 1);
            description.Append('>');
            return;
        }

        if (type == typeof(ShmString))
        {
            description.Append("str");
            return;
        }

        if (type == typeof(ShmHandle))
        {
            description.Append("handle");
            return;
        }

        string? leaf = LeafCode(type);
        if (leaf is not null)
        {
            description.Append(leaf);
            return;
        }

        if (type.IsPointer || type.IsFunctionPointer || type.IsUnmanagedFunctionPointer)
        {
            throw new ArgumentException(
                $"Type {type} holds a pointer: pointers mean nothing in another process. Store a ShmHandle instead.");
        }

        if (!type.IsValueType)
        {
            throw new ArgumentException($"Type {type} is not an unmanaged value type.");
        }

        // A struct: its size, then each field at its real offset in this runtime's layout.
        description.Append(SizeOf(type)).Append('{');
        foreach ((int offset, FieldInfo field) in FieldsByOffset(type))
        {
            description.Append(offset).Append(':');
            Append(field.FieldType, description, vectors);
            description.Append(';');
        }

        description.Append('}');
    }

    private static string? LeafCode(Type type)
    {
        if (type.IsEnum)
        {
            return "e" + LeafCode(Enum.GetUnderlyingType(type));
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "b1",
            TypeCode.Char => "c2",
            TypeCode.SByte => "i1",
            TypeCode.Byte => "u1",
            TypeCode.Int16 => "i2",
            TypeCode.UInt16 => "u2",
            TypeCode.Int32 => "i4",
            TypeCode.UInt32 => "u4",
            TypeCode.Int64 => "i8",
            TypeCode.UInt64 => "u8",
            TypeCode.Single => "f4",
            TypeCode.Double => "f8",
            _ when type == typeof(nint) => "in",
            _ when type == typeof(nuint) => "un",
            _ => null,
        };
    }

    /// <summary>
    /// The instance fields of a struct with their offsets as this runtime lays them out. The offset of a
    /// field is found by writing a marker into it in a zeroed boxed instance and seeing which byte changed:
    /// exact for the managed layout (which is what goes into shared memory), whatever the struct's layout
    /// kind, packing or genericity.
    /// </summary>
    private static List<(int Offset, FieldInfo Field)> FieldsByOffset(Type type)
    {
        var result = new List<(int, FieldInfo)>();
        foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            result.Add((OffsetOf(type, field), field));
        }

        result.Sort((a, b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : string.CompareOrdinal(a.Item2.Name, b.Item2.Name));
        return result;
    }

    private static int OffsetOf(Type type, FieldInfo field)
    {
        var explicitOffset = field.GetCustomAttribute<FieldOffsetAttribute>();
        if (explicitOffset is not null)
        {
            return explicitOffset.Value;
        }

        // Walk down to the field's first primitive leaf and mark it.
        var path = new List<FieldInfo> { field };
        Type leafType = field.FieldType;
        while (LeafCode(leafType) is null)
        {
            if (!leafType.IsValueType || leafType.IsPointer)
            {
                throw new ArgumentException($"Type {type} has field {field.Name} of type {field.FieldType}, which cannot live in shared memory: a pointer or a reference means nothing in another process. Store a ShmHandle instead.");
            }

            FieldInfo? first = leafType.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .OrderBy(f => f.MetadataToken)
                .FirstOrDefault();
            if (first is null)
            {
                return OffsetOfEmptyStruct(type, field);
            }

            path.Add(first);
            leafType = first.FieldType;
        }

        object boxed = RuntimeHelpers.GetUninitializedObject(type);
        if (path.Count == 1)
        {
            field.SetValue(boxed, Marker(leafType)); // writes into the box
        }
        else
        {
            TypedReference target = TypedReference.MakeTypedReference(boxed, [.. path.Take(path.Count - 1)]);
            path[^1].SetValueDirect(target, Marker(leafType));
        }

        byte[] bytes = BytesOf(boxed, SizeOf(type));
        int index = Array.FindIndex(bytes, b => b != 0);
        int leafOffset = LeafOffsetWithin(path);
        return index < 0 ? 0 : index - leafOffset;
    }

    private static int LeafOffsetWithin(List<FieldInfo> path)
    {
        // Offsets of the first fields of nested structs, below the top-level field; each is found the same way.
        int offset = 0;
        for (int i = 1; i < path.Count; i++)
        {
            offset += OffsetOf(path[i - 1].FieldType, path[i]);
        }

        return offset;
    }

    private static int OffsetOfEmptyStruct(Type type, FieldInfo field)
    {
        // A field of an empty struct type: order among the others is all that is known; use the declared
        // position, which is stable for the same declaration.
        _ = type;
        return field.MetadataToken & 0xFFFF;
    }

    private static object Marker(Type leaf)
    {
        if (leaf.IsEnum)
        {
            return Enum.ToObject(leaf, Marker(Enum.GetUnderlyingType(leaf)));
        }

        return Type.GetTypeCode(leaf) switch
        {
            TypeCode.Boolean => true,
            TypeCode.Char => (char)0xFFFF,
            TypeCode.SByte => (sbyte)-1,
            TypeCode.Byte => byte.MaxValue,
            TypeCode.Int16 => (short)-1,
            TypeCode.UInt16 => ushort.MaxValue,
            TypeCode.Int32 => -1,
            TypeCode.UInt32 => uint.MaxValue,
            TypeCode.Int64 => -1L,
            TypeCode.UInt64 => ulong.MaxValue,
            TypeCode.Single => BitConverter.Int32BitsToSingle(-1),
            TypeCode.Double => BitConverter.Int64BitsToDouble(-1),
            _ when leaf == typeof(nint) => (nint)(-1),
            _ when leaf == typeof(nuint) => nuint.MaxValue,
            _ => throw new ArgumentException($"No marker for {leaf}."),
        };
    }

    private static unsafe byte[] BytesOf(object boxed, int size)
    {
        var bytes = new byte[size];
        // The data of a boxed value type starts right after the method-table pointer.
        ref byte data = ref Unsafe.As<RawBox>(boxed).Data;
        Unsafe.CopyBlockUnaligned(ref bytes[0], ref data, (uint)size);
        return bytes;
    }

    private static int SizeOf(Type type) => RuntimeHelpers.SizeOf(type.TypeHandle);


    private sealed class RawBox
    {
        public byte Data;
    }
}
