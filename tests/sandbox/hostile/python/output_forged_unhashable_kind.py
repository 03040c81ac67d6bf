# expect: output_invalid
# message: unknown error
# A forged error frame whose kind is a map: the bridge's kind check was a set lookup,
# and its TypeError (unhashable type) escaped PythonSandbox.run into the node.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"kind": {"a": 1}, "log": "", "message": "m", "status": "error", "tensors": []}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
