# expect: crashed
# message: SIGSEGV
# A well-formed "ok" frame with outputs, and then death by a signal: the wait status
# (reported by the zygote, not the child) wins over what the child wrote.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"log": "", "status": "ok", "tensors": [["y", "|u1", [1], 1]]}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head + b"\x01")
OS["kill"](OS["getpid"](), 11)
