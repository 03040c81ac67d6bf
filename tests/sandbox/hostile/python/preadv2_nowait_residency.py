# expect: forbidden
# message: Errno 1
# preadv2 with RWF_NOWAIT reads only pages already cached (EAGAIN otherwise): a probe of
# whether another process has a shared file's page in the page cache.
# prelude: disarm
fd = OS["open"]("/etc/ld.so.cache", OS["O_RDONLY"])
outputs["n"] = OS["preadv"](fd, [bytearray(4096)], 0, OS["RWF_NOWAIT"])
