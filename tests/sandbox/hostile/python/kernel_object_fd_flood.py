# expect: crashed
# message: Errno 24
# Kernel objects outside RLIMIT_AS (eventfds, timerfds, epoll instances, pipes with
# 1 MiB buffers) until the kernel refuses: RLIMIT_NOFILE (max_open_files + 8) bounds them.
# prelude: disarm
# prelude: syscall
fcntl = OS["sys"].modules["fcntl"]
held = []
while True:
    held.append(sc(290, 0, 0))                   # eventfd2
    held.append(sc(283, 1, 0))                   # timerfd_create(CLOCK_MONOTONIC)
    held.append(sc(291, 0))                      # epoll_create1
    r, w = OS["pipe"]()
    held += [r, w]
    fcntl.fcntl(w, 1031, 1 << 20)                # F_SETPIPE_SZ
