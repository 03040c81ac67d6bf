# expect: output_invalid
# message: CBOR tag 36
# A forged result header whose log is CBOR tag 36 (a MIME message) of 2.4 MB: cbor2
# parsed it with the email package before the value check refused it, 7 s of the node's
# CPU after the job had ended (tag 35 compiles a regular expression likewise). Frame
# headers carry no tags; the item walk refuses them before decoding.
# prelude: disarm
cbor2 = OS["sys"].modules["cbor2"]
mime = "Content-Type: multipart/mixed; boundary=x\n\n" + "--x\n\n" * 400000
head = cbor2.dumps({"log": cbor2.CBORTag(36, mime), "status": "ok", "tensors": []})
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
