namespace SharedMemChannels.TestHost;

/// <summary>
/// The damage roles' runner: one operation on a deliberately damaged object, with a watchdog. The outcome
/// is "what-ok", "what-canceled", or the role's name for a documented exception; an undocumented
/// exception (the classifier returns null) or a hang prints an error line and ends the process with 1.
/// </summary>
internal static class DamageWatchdog
{
    public static string Run(string what, Func<Task> operation, string where, Func<string, Exception, string?> classify)
    {
        Task task;
        try
        {
            task = Task.Run(operation);
        }
        catch (Exception thrown)
        {
            task = Task.FromException(thrown);
        }

        try
        {
            task.Wait(TimeSpan.FromSeconds(60));
        }
        catch (AggregateException)
        {
            // Looked at below.
        }

        if (!task.IsCompleted)
        {
            Console.WriteLine($"error Hang {what} after damage {where}");
            Environment.Exit(1);
        }

        if (task.IsCanceled)
        {
            return what + "-canceled"; // our bound on a pending wait
        }

        if (task.Exception?.InnerException is not { } e)
        {
            return what + "-ok";
        }

        if (classify(what, e) is { } outcome)
        {
            return outcome;
        }

        Console.WriteLine($"error {e.GetType().Name} {what} after damage {where}: {e.Message.ReplaceLineEndings(" ")} {e.StackTrace?.ReplaceLineEndings(" | ")}");
        Environment.Exit(1);
        return string.Empty;
    }
}
