# expect: forbidden
# message: Errno 1
# sendfile from a read-only system file into a pipe: the kernel puts the file's
# page-cache pages into the pipe (splice_file_to_pipe), the first step of Dirty Pipe,
# the class splice/tee/vmsplice are refused for.
# prelude: disarm
fd = OS["open"]("/etc/ld.so.cache", OS["O_RDONLY"])
r, w = OS["pipe"]()
OS["sendfile"](w, fd, 0, 4096)
