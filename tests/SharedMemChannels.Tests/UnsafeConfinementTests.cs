using System.Text.RegularExpressions;

namespace SharedMemChannels.Tests;

/// <summary>
/// Pointers, <c>unsafe</c>, <c>Unsafe.*</c>, <c>MemoryMarshal</c> and P/Invoke live in five internal
/// types at most, named here and in docs/design.md. A sixth fails this test: route it through the
/// memory accessor or the native-call type instead.
/// </summary>
public sealed partial class UnsafeConfinementTests
{
    /// <summary>The only files (one type each) allowed to use unsafe code, and why.</summary>
    private static readonly Dictionary<string, string> Allowed = new(StringComparer.Ordinal)
    {
        ["src/SharedMemChannels/Platform/Linux/LibC.cs"] = "the native calls",
        ["src/SharedMemChannels/Platform/Linux/LinuxFutex.cs"] = "futex and futex_waitv on addresses",
        ["src/SharedMemChannels/Segments/SegmentMemory.cs"] = "the one bounds-checked accessor of shared memory",
        ["src/SharedMemChannels/Objects/TypeLayout.cs"] = "reading a boxed struct's bytes to find its field offsets",
    };

    [Fact]
    public void Unsafe_code_stays_in_the_allowed_types_and_they_are_at_most_five()
    {
        Assert.True(Allowed.Count <= 5);
        string root = RepositoryRoot();
        var offenders = new List<string>();
        var users = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }

            if (UnsafeCode().IsMatch(File.ReadAllText(file)))
            {
                users.Add(relative);
                if (!Allowed.ContainsKey(relative))
                {
                    offenders.Add(relative);
                }
            }
        }

        Assert.True(offenders.Count == 0, "Unsafe code outside the allowed types: " + string.Join(", ", offenders));
        Assert.NotEmpty(users); // the scan found the tree: the accessor itself is unsafe
        Assert.True(users.Count <= 5, "More than five types use unsafe code: " + string.Join(", ", users));
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SharedMemChannels.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (SharedMemChannels.slnx) is not above the test binaries.");
    }

    [GeneratedRegex(@"\bunsafe\b|\bUnsafe\.|\bMemoryMarshal\.|\bLibraryImport\b|\bDllImport\b|\bfixed\s*\(")]
    private static partial Regex UnsafeCode();
}
