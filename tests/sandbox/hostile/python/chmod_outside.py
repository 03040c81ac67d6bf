# expect: forbidden
# message: Errno 1
# chmod a root-owned file outside the sandbox: Landlock does not cover metadata, and a
# root child without capabilities still owns it; seccomp refuses the chmod family.
# prelude: disarm
OS["chmod"]("TARGET", 0o777)
