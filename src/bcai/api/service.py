"""What the REST API needs from a node: read views and two writes (a tx, an artifact).

Views are plain JSON-ready dicts (see `bcai.node.views`). Errors are `BcaiError`s; the API
turns their `code` / `http_status` into the response. No method takes a private key.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from bcai.crypto import Address, Cid
from bcai.errors import BcaiError


class NodeService(Protocol):
    def get_status(self) -> dict[str, Any]: ...
    def get_block(self, height: int) -> dict[str, Any] | None: ...
    def get_latest_block(self) -> dict[str, Any] | None: ...
    def get_tx(self, tx_hash: bytes) -> dict[str, Any] | None: ...
    def get_account(self, address: str) -> dict[str, Any]: ...
    def get_validators(self, after: Address | None, limit: int) -> tuple[list[dict[str, Any]], Address | None]:
        """Up to `limit` validators in address order after `after` (from the first when
        None), and the last address listed when more follow (else None)."""
        ...

    def get_jobs(self, after: bytes | None, limit: int) -> tuple[list[dict[str, Any]], bytes | None]:
        """Up to `limit` jobs in job id order after `after`, and the last id listed when
        more follow (else None)."""
        ...

    def get_job(self, job_id: bytes) -> dict[str, Any] | None: ...
    def get_nodes(self) -> list[dict[str, Any]]: ...
    def get_params(self) -> dict[str, Any]: ...

    async def submit_tx(self, raw: bytes) -> bytes:
        """Check and admit a signed tx to the mempool and gossip it; return its hash."""
        ...

    async def submit_txs(self, raws: list[bytes]) -> list[bytes | BcaiError]:
        """`submit_tx` for each tx in order: its hash, or the error that refused it (not raised)."""
        ...

    async def get_artifact(self, cid: str) -> bytes | None:
        """The artifact from this node's content store, else fetched from peers; None if nobody
        has it (`NodeBusy` when peers that might have it were not asked, to keep to their pace)."""
        ...

    def has_artifact(self, cid: Cid) -> bool:
        """Whether the node holds `cid` (nothing else)."""
        ...

    def get_renewal_cost(self, cid: Cid) -> int:
        """Bytes of the client's upload allowance that uploading held `cid` again costs: 0
        unless it is an API upload, else its size times the part of its grace that has run
        since its last upload."""
        ...

    def renew_artifact(self, cid: Cid) -> bool:
        """True if the node holds `cid` already: an upload of it then stores nothing, and an
        API upload counts as uploaded now (its grace before eviction starts again; the
        caller charged `get_renewal_cost`)."""
        ...

    async def put_artifact(self, cid: Cid, data: bytes) -> None:
        """Store bytes checked against `cid` for an API client, within the node's upload
        quota (`StorageFull` when the quota is full of what it may not evict)."""
        ...

    async def post_job_message(self, job_id: bytes, data: bytes) -> int:
        """Check a signed job message, keep it and relay it on the job's topic; return its index."""
        ...

    async def get_job_messages(self, job_id: bytes, after: int) -> dict[str, Any] | None:
        """`{"messages": [{"index", "data" (hex)}], "next"}` from index `after` on; None for
        a job not on chain."""
        ...

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of events (`{"type": "block"|"tx"|"job", ...}`); call `unsubscribe` when done."""
        ...

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None: ...
    def render_metrics(self) -> bytes: ...
