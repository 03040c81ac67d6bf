# expect: time_limit
# Block every signal and wait for one that never comes: SIGKILL cannot be blocked.
# prelude: disarm
signal = OS["sys"].modules["signal"]
signal.pthread_sigmask(signal.SIG_BLOCK, range(1, 65))
signal.sigwait([10])
