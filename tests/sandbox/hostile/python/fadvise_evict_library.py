# expect: forbidden
# message: Errno 1
# posix_fadvise(DONTNEED) on a shared file evicts its clean pages from the page cache
# for every process on the host (the eviction half of a page-cache side channel, and a
# slowdown of whoever uses the file).
# prelude: disarm
fd = OS["open"]("/etc/ld.so.cache", OS["O_RDONLY"])
OS["posix_fadvise"](fd, 0, 0, OS["POSIX_FADV_DONTNEED"])
