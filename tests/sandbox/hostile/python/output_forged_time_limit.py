# expect: output_invalid
# message: unknown error
# A frame of its own that claims `time_limit` (only the bridge's clock may say so): a
# program would pass its refusal or crash off as "the node was too slow" and be retried
# on more generous nodes instead of being blamed.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
head = cbor2.dumps({"kind": "time_limit", "log": "", "message": "killed at the limit", "status": "error", "tensors": []}, canonical=True)
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
