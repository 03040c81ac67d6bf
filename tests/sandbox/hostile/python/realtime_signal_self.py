# expect: crashed
# message: killed by signal 40
# Death by a real-time signal it sends itself (SIGRTMIN+6; the default action ends the
# process): Python's signal.Signals has no name for it, and the bridge's ValueError
# escaped PythonSandbox.run into the node.
# prelude: disarm
OS["kill"](OS["getpid"](), 40)
