# expect: output_invalid
# message: more than 65536 CBOR items
# A forged result header of 4 MiB of empty maps (4 million CBOR items): the node's
# canonical decoder spent 12 s (GIL held) and 290 MB on it after the job had ended,
# outside every limit of the job. Items are now counted before anything is decoded.
# prelude: disarm
n = 4 * 1024 * 1024 - 32
head = b"\xa1\x63log\x9a" + n.to_bytes(4, "big") + b"\xa0" * n
OS["write"](4, b"BCSB" + len(head).to_bytes(4, "big") + head)
OS["_exit"](0)
