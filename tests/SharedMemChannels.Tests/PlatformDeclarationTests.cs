using System.Reflection;
using System.Runtime.Versioning;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// The library says where it runs: Linux only, declared on the assembly so that a project that may run
/// elsewhere learns it at build time (CA1416), not from a PlatformNotSupportedException at run time.
/// </summary>
public class PlatformDeclarationTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("shmc-platform-").FullName;

    [Fact]
    public void The_library_assembly_is_declared_linux_only()
    {
        string[] platforms = typeof(SharedSegment).Assembly.GetCustomAttributes<SupportedOSPlatformAttribute>()
            .Select(a => a.PlatformName).ToArray();
        Assert.Equal(["linux"], platforms);
    }

    [Fact]
    public void A_project_that_may_run_anywhere_gets_CA1416_when_it_calls_the_library()
    {
        // A consumer outside this repository (none of its build settings apply), targeting plain net10.0:
        // its call sites are reachable on every platform.
        string library = typeof(SharedSegment).Assembly.Location;
        File.WriteAllText(Path.Combine(_work, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <Reference Include="SharedMemChannels" HintPath="{library}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(_work, "Program.cs"), """
            Console.WriteLine(SharedMemChannels.SharedSegment.Exists("anything"));
            """);

        using ChildProcess build = ChildProcess.Dotnet(_work, "build", "-nologo", "-v:q", "-p:UseSharedCompilation=false");
        int code = build.WaitForExit(TimeSpan.FromMinutes(5));
        string output = build.Transcript;
        Assert.True(code == 0, $"the consumer did not build ({code}):\n{output}");
        Assert.Contains("CA1416", output, StringComparison.Ordinal);
        Assert.Contains("'linux'", output, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Directory.Delete(_work, recursive: true);
        GC.SuppressFinalize(this);
    }
}
