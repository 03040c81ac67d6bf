# expect: output_invalid
# message: too big for any array
# A forged frame with an empty tensor (one dimension 0, so 0 bytes) whose other
# dimensions multiply past numpy's size bound: numpy's ValueError used to escape the
# frame decoder and PythonSandbox.run, crashing the node instead of failing the job.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"log": "", "status": "ok", "tensors": [["x", "<f8", [0, 1 << 40, 1 << 40, 1 << 40], 0]]}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
