using System.Runtime.Versioning;

// The library has one backend: Linux (x64, arm64; futex, POSIX and System V shared memory, /proc). Saying so
// here makes the platform compatibility analyzer (CA1416) warn at build time in a project that targets
// Windows or macOS, instead of a PlatformNotSupportedException at run time. docs/porting.md says what a
// Windows or macOS backend would take.
[assembly: SupportedOSPlatform("linux")]
