using System.Text.RegularExpressions;
using SharedMemChannels.Tests.Infrastructure;

namespace SharedMemChannels.Tests;

/// <summary>
/// Every field of the control blocks and headers, damaged alone with impossible values (0, -1, the largest
/// value, a pattern): opening the object from another attachment, using it, disposing it and removing it
/// throw <see cref="InvalidSegmentException"/> or a documented outcome of the step, never an
/// <c>ArgumentException</c> or an <c>InvalidCastException</c> for an impossible value, and disposing never
/// throws at all. Each object runs in a child (test host role <c>field-damage</c>), so that a crash or a
/// hang is a failure the test sees with the field that caused it.
/// </summary>
public partial class FieldDamageTests : SegmentTest
{
    [Theory]
    [InlineData("channel")]
    [InlineData("spsc-ring")]
    [InlineData("mpmc-ring")]
    [InlineData("unbounded-ring")]
    [InlineData("topic")]
    [InlineData("mutex")]
    [InlineData("event")]
    [InlineData("semaphore")]
    public void Each_damaged_field_is_InvalidSegmentException_or_a_documented_outcome_and_Dispose_never_throws(string kind)
    {
        ChildProcess child = Host("field-damage", NewName("field"), "--object", kind);
        int code = child.WaitForExit(TimeSpan.FromMinutes(10));
        string transcript = child.Transcript;
        Match done = Done().Match(transcript);
        Assert.True(code == 0 && done.Success, $"exit {code}:\n{transcript}");
        Assert.Equal("0", done.Groups["violations"].Value);
        // The test damaged something: at least some cases were reported as damage.
        Assert.True(int.Parse(done.Groups["damaged"].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, transcript);
    }

    [GeneratedRegex(@"field-damage done object=\S+ cases=(?<cases>\d+) damaged=(?<damaged>\d+) violations=(?<violations>\d+)")]
    private static partial Regex Done();
}
