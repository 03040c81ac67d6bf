"""A minimal p2p node process for the e2e tests (not a test file).

Usage: python p2p_node_proc.py LABEL. Prints one JSON line {"id", "address"}, then serves:
gossip on `blocks` (counted), request `test/connect` ("<id>@host:port": dial it) and
`test/stats` (JSON: received messages, bans, peers, max RSS in KiB).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections import Counter

from bcai.crypto import PrivateKey
from bcai.p2p import GossipMessage, Host, NodeId, TcpTransport, parse_peer_address


async def main(label: str) -> None:
    host = Host(PrivateKey.from_label(label), TcpTransport())
    await host.start("127.0.0.1:0")
    received: Counter[str] = Counter()

    async def on_block(message: GossipMessage) -> None:
        received[message.message_id.hex()] += 1

    async def connect(peer: NodeId, payload: bytes) -> bytes:
        node, address = parse_peer_address(payload.decode())
        await host.connect(address, node)
        return b"ok"

    async def stats(peer: NodeId, payload: bytes) -> bytes:
        return json.dumps({
            "received": received,
            "metrics": host.metrics,
            "peers": [str(p) for p in host.peers],
            "banned": [str(p) for p in host.scores.bans],
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }).encode()

    await host.subscribe("blocks", on_block)
    host.register_handler("test/connect", connect)
    host.register_handler("test/stats", stats)
    print(json.dumps({"id": str(host.node_id), "address": host.address}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
