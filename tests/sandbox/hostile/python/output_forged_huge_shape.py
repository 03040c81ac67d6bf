# expect: output_invalid
# A forged frame declaring a tensor of 2**62 elements (no bytes behind it): the parent
# checks lengths before it allocates anything.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"log": "", "status": "ok", "tensors": [["x", "|u1", [1 << 31, 1 << 31], 1 << 62]]}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
