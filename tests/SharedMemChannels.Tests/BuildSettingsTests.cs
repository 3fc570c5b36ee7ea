namespace SharedMemChannels.Tests;

/// <summary>
/// The repository's one strict build (Directory.Build.props) behaves the same wherever the repository is
/// cloned: its conditions look at paths relative to the repository, never at the clone's own path.
/// </summary>
public class BuildSettingsTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("shmc-build-").FullName;

    [Fact]
    public void Only_projects_under_the_repositorys_src_document_their_api_even_in_a_clone_under_a_src_folder()
    {
        // A clone whose own path contains "/src/" (for example ~/src/SharedMemChannels): before the
        // condition was anchored to the repository root, every test, sample and bench project of such a
        // clone had to document its public API (36 CS1591 errors, and dotnet test failed).
        string clone = Path.Combine(_work, "src", "clone");
        string root = RepositoryRoot();
        foreach (string file in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json" })
        {
            Directory.CreateDirectory(clone);
            File.Copy(Path.Combine(root, file), Path.Combine(clone, file));
        }

        string shipped = WriteProject(clone, "src/Shipped/Shipped.csproj");
        string test = WriteProject(clone, "tests/Probe.Tests/Probe.Tests.csproj");
        string sample = WriteProject(clone, "samples/Sample/Sample.csproj");
        string nested = WriteProject(clone, "tests/Probe.Tests/src/Nested.csproj");

        Assert.Equal("true", GenerateDocumentationFile(clone, shipped));
        Assert.NotEqual("true", GenerateDocumentationFile(clone, test));
        Assert.NotEqual("true", GenerateDocumentationFile(clone, sample));
        Assert.NotEqual("true", GenerateDocumentationFile(clone, nested));
    }

    [Fact]
    public void The_repositorys_own_projects_document_their_api_exactly_where_they_ship()
    {
        string root = RepositoryRoot();
        Assert.Equal("true", GenerateDocumentationFile(root, "src/SharedMemChannels/SharedMemChannels.csproj"));
        Assert.Equal("true", GenerateDocumentationFile(root, "src/Shmc/Shmc.csproj"));
        Assert.NotEqual("true", GenerateDocumentationFile(root, "tests/SharedMemChannels.TestHost/SharedMemChannels.TestHost.csproj"));
    }

    public void Dispose()
    {
        Directory.Delete(_work, recursive: true);
        GC.SuppressFinalize(this);
    }

    private static string WriteProject(string clone, string relative)
    {
        string path = Path.Combine(clone, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "<Project Sdk=\"Microsoft.NET.Sdk\" />\n");
        return relative;
    }

    /// <summary>The property as MSBuild evaluates it for the project (evaluation only: no restore, no build).</summary>
    private static string GenerateDocumentationFile(string directory, string project)
    {
        using Infrastructure.ChildProcess msbuild = Infrastructure.ChildProcess.Dotnet(directory, "msbuild", project, "-getProperty:GenerateDocumentationFile", "-nologo");
        int code = msbuild.WaitForExit();
        string output = msbuild.Transcript;
        Assert.True(code == 0, $"dotnet msbuild {project} failed ({code}):\n{output}");
        return string.Concat(output.Split('\n').Where(l => !l.StartsWith("stderr:", StringComparison.Ordinal))).Trim();
    }

    internal static string RepositoryRoot()
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
}
