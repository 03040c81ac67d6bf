"""GET /artifacts/{cid} for CIDs the node lacks makes it ask its peers: a flood of such
requests from API clients must not make the node exceed what its peers allow it (they would
rate-limit and ban it, cutting a validator off the network)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bcai.crypto import Cid
from bcai.node.config import ApiConfig
from bcai.node.service import ARTIFACT_ASKS_BURST, ARTIFACT_ASKS_PER_S

from api_support import connected_peer, serving


def test_invalid_flood_of_unknown_cids_does_not_get_the_node_banned_by_its_peers(node_home: Path) -> None:
    async def scenario() -> None:
        known = b"an artifact only the peer holds"
        async with serving(node_home, ApiConfig(rate_limit_per_s=100_000)) as (node, client):
            async with connected_peer(node, (known,)) as peer:
                started = time.monotonic()
                answers = await asyncio.gather(*(client.get(f"/artifacts/{Cid.of(os.urandom(8))}")
                                                 for _ in range(250)))
                elapsed = time.monotonic() - started
                codes = [(r.status_code, r.json()["error"]["code"]) for r in answers]
                assert set(codes) == {(404, "not_found"), (503, "node_busy")}
                # the peer was asked at its pace: the burst, and what refilled meanwhile (a loaded machine is slow)
                assert codes.count((404, "not_found")) <= ARTIFACT_ASKS_BURST + ARTIFACT_ASKS_PER_S * elapsed + 5
                await asyncio.sleep(0.2)
                assert peer.metrics["rate_limited"] == 0 and node.host.node_id in peer.peers
                for _ in range(40):  # the pace refills (misses cost double): the peer is asked again
                    answer = await client.get(f"/artifacts/{Cid.of(known)}")
                    if answer.status_code != 503:
                        break
                    await asyncio.sleep(0.25)
                assert answer.content == known
    asyncio.run(scenario())
