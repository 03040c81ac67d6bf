# expect: output_invalid
# message: dtype
# A forged result frame declaring an object ("|O") tensor whose bytes are a pickle.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
payload = b"\x80\x04cos\nsystem\n."
head = cbor2.dumps({"log": "", "status": "ok", "tensors": [["x", "|O", [1], len(payload)]]}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head + payload)
OS["_exit"](0)
