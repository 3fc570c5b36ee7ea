using System.Runtime.Versioning;

// The library's tested platform is Linux; the tests use Linux facilities directly.
[assembly: SupportedOSPlatform("linux")]
