"""One SDK client used from several threads (as the job agents do with asyncio.to_thread):
every tx gets its own nonce, none is refused or lost."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bcai.crypto import PrivateKey
from bcai.node.embedded import running_node
from bcai.sdk import Client


def test_concurrent_sends_from_one_client_take_distinct_nonces(node_home: Path) -> None:
    async def scenario() -> None:
        async with running_node(node_home) as (node, url):
            with Client(url, key=node.key) as client:
                start = (await asyncio.to_thread(client.account, node.key.address))["nonce"]
                recipients = [PrivateKey.from_label(f"thread-{i}").address for i in range(4)]

                def send_ten(to: object) -> list[str]:
                    return [client.transfer(to, 1 + k) for k in range(10)]  # type: ignore[arg-type]

                with ThreadPoolExecutor(4) as pool:
                    hashes = [h for batch in await asyncio.to_thread(lambda: list(pool.map(send_ten, recipients)))
                              for h in batch]
                receipts = [await asyncio.to_thread(client.wait_for_tx, h, 30.0) for h in hashes]
                assert sorted(r["nonce"] for r in receipts) == list(range(start, start + 40))
                for to in recipients:
                    assert (await asyncio.to_thread(client.account, to))["balance"] == sum(range(1, 11))
    asyncio.run(scenario())
