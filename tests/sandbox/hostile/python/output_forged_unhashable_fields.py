# expect: output_invalid
# message: malformed
# A forged frame whose tensor dtype is a list: the dtype check was a set lookup, and
# its TypeError (unhashable type) escaped the frame decoder and PythonSandbox.run.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"log": "", "status": "ok", "tensors": [["x", ["<f4"], [1], 4]]}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head + b"\0" * 4)
OS["_exit"](0)
