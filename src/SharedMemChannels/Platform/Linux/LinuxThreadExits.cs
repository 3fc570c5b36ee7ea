namespace SharedMemChannels.Platform.Linux;

/// <summary>
/// Thread exits through thread pidfds (<c>pidfd_open(tid, PIDFD_THREAD)</c>, Linux 6.9+): the kernel
/// makes a thread's descriptor readable when the thread has ended. One watcher thread per process sleeps
/// in <c>poll</c> on every watched descriptor and an eventfd doorbell (rung when a thread is added), so
/// watching costs no CPU while nothing ends and no thread per watched thread.
/// </summary>
internal sealed class LinuxThreadExits : IThreadExits
{
    private readonly Lock _lock = new();
    private readonly List<(int Fd, IThreadExitListener Listener)> _watched = [];
    private int _doorbell = -1;
    private Thread? _thread;
    private int _unsupported; // 1 once the kernel said it has no thread pidfds

    /// <inheritdoc />
    public bool TryWatchCurrentThread(IThreadExitListener listener)
    {
        if (Volatile.Read(ref _unsupported) != 0)
        {
            return false;
        }

        int fd = LibC.PidfdOpen(LibC.GetTid(), LibC.PIDFD_THREAD);
        if (fd < 0)
        {
            // EINVAL: a kernel before 6.9 (no PIDFD_THREAD, and a thread that is not a group leader);
            // ENOSYS: before 5.3. Neither changes while the process runs. Out of descriptors may pass.
            if (Errno.Last is Errno.EINVAL or Errno.ENOSYS)
            {
                Volatile.Write(ref _unsupported, 1);
            }

            return false;
        }

        lock (_lock)
        {
            if (_doorbell < 0)
            {
                _doorbell = LibC.EventFd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
                if (_doorbell < 0)
                {
                    LibC.Close(fd);
                    return false;
                }
            }

            _watched.Add((fd, listener));
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "shmc thread exits" };
                _thread.Start();
            }
        }

        LibC.EventFdWrite(_doorbell, 1);
        return true;
    }

    private void Run()
    {
        var fds = new LibC.PollFd[16];
        var ended = new List<IThreadExitListener>();
        while (true)
        {
            int count;
            lock (_lock)
            {
                count = _watched.Count + 1;
                if (fds.Length < count)
                {
                    Array.Resize(ref fds, Math.Max(count, fds.Length * 2));
                }

                fds[0] = new LibC.PollFd { Fd = _doorbell, Events = LibC.POLLIN };
                for (int i = 1; i < count; i++)
                {
                    fds[i] = new LibC.PollFd { Fd = _watched[i - 1].Fd, Events = LibC.POLLIN };
                }
            }

            // Descriptors are added by other threads (the doorbell then wakes this poll) and removed only
            // here, so every descriptor of the array stays open while it is polled.
            if (LibC.Poll(fds.AsSpan(0, count), -1) < 0)
            {
                if (Errno.Last != Errno.EINTR)
                {
                    Thread.Sleep(1000); // never spin on a failing call; threads still end and are seen later
                }

                continue;
            }

            if (fds[0].Revents != 0)
            {
                while (LibC.EventFdRead(_doorbell))
                {
                }
            }

            lock (_lock)
            {
                for (int i = count - 1; i >= 1; i--)
                {
                    if (fds[i].Revents != 0)
                    {
                        int index = _watched.FindIndex(w => w.Fd == fds[i].Fd);
                        ended.Add(_watched[index].Listener);
                        LibC.Close(fds[i].Fd);
                        _watched.RemoveAt(index);
                    }
                }
            }

            // Outside the lock: a listener may take other locks (the heap's), and new threads may register meanwhile.
            foreach (IThreadExitListener listener in ended)
            {
                listener.OnThreadExited();
            }

            ended.Clear();
        }
    }
}
