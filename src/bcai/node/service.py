"""`NodeReads`: the read side of `bcai.api.NodeService` over a node's store, state and host.

`Node` inherits it; it only reads `self.app`, `self.store`, `self.host`, `self.config`,
`self.spec`, `self.content`, `self.mempool` and `self.metrics`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bcai.crypto import Address, Cid
from bcai.errors import BcaiError, BlockNotFound, ContentNotFound, ContentStoreFull, NodeBusy, StorageFull
from bcai.node.application import CommittedBlock
from bcai.p2p import NodeId, scoring
from bcai.p2p.content import GET_PROTOCOL
from bcai.p2p.host import BULK_FREE_BYTES
from bcai.p2p.scoring import TokenBucket
from bcai.ledger import get_validator_set
from bcai.node.uploads import UploadLedger, find_job_references, find_pinned_artifacts
from bcai.node.views import view_account, view_block, view_job, view_tx, view_validator

if TYPE_CHECKING:
    from bcai.consensus import Engine
    from bcai.crypto import PrivateKey
    from bcai.node.application import NodeApplication
    from bcai.node.chainspec import ChainSpec
    from bcai.node.config import NodeConfig
    from bcai.node.job_relay import JobRelay
    from bcai.node.mempool import Mempool
    from bcai.node.telemetry import NodeMetrics
    from bcai.p2p import Host
    from bcai.store import FileContentStore, SqliteChainStore

log = logging.getLogger("bcai.node")

ARTIFACT_FETCH_TIMEOUT_S = 30.0
# What artifact asks on behalf of API clients may cost a peer's rate limit (100 messages/s
# from us, beside tx relay paced at 50/s and consensus), in its own units: the ask is one
# message, and an answer under BULK_FREE_BYTES (a miss, a small artifact) one more. API
# clients asking for many CIDs nobody has must not get this node banned by its peers; a
# chunk download still goes at 20 x 4 MiB a second per peer.
ARTIFACT_ASKS_PER_S = 20.0
ARTIFACT_ASKS_BURST = 40.0


# The tables of `bcai.ledger.State` the pages read (keys `table + id`, listed in key order).
JOBS_TABLE = b"job/"
VALIDATORS_TABLE = b"val/"


def _page_keys(keys: list[bytes], table: bytes, after: bytes | None, limit: int) -> tuple[list[bytes], bytes | None]:
    """Keyset paging over a table's sorted keys: the ids of up to `limit` entries after the
    id `after` (from the first when None), and the last of them when more follow (else None).
    An id that is not in the table is fine: the page starts at the next one after it."""
    start = 0 if after is None else bisect.bisect_right(keys, table + after)
    page = [key[len(table):] for key in keys[start:start + limit]]
    return page, page[-1] if page and start + limit < len(keys) else None


class NodeReads:
    # What the reads use; `Node` sets all of it in its constructor.
    app: NodeApplication
    store: SqliteChainStore
    host: Host
    config: NodeConfig
    spec: ChainSpec
    content: FileContentStore
    mempool: Mempool
    metrics: NodeMetrics
    key: PrivateKey
    engine: Engine
    jobs: JobRelay
    is_validator: bool
    api_url: str
    last_commit_time_ms: int | None
    artifact_asks: dict[NodeId, TokenBucket]  # per peer: the pace of artifact asks for API clients
    _uploads: UploadLedger | None = None  # what API clients stored here (opened on first use)

    def get_status(self) -> dict[str, Any]:
        state = self.app.state
        latest = self.get_latest_block()
        return {
            "chain_id": self.spec.chain_id, "name": self.config.name, "node_id": str(self.host.node_id),
            "address": str(self.key.address), "roles": list(self.config.roles), "validator": self.is_validator,
            "height": state.height, "app_hash": state.root().hex(),
            "latest_block_hash": latest["hash"] if latest else None,
            "latest_block_time_ms": latest["time_ms"] if latest else None,
            "last_commit_time_ms": self.last_commit_time_ms,
            "consensus": {"height": self.engine.height, "round": self.engine.round, "step": self.engine.step},
            "peers": len(self.host.peers), "p2p_address": self.host.address,
            "p2p_peer_address": f"{self.host.node_id}@{self.host.address}",
            "api_url": self.api_url, "mempool": {"txs": len(self.mempool), "bytes": self.mempool.size_bytes},
            "treasury": state.treasury, "supply": state.supply,
        }

    def _committed(self, height: int) -> CommittedBlock | None:
        try:
            return CommittedBlock.from_bytes(self.store.get_block(height).data)
        except BlockNotFound:
            return None

    def get_block(self, height: int) -> dict[str, Any] | None:
        record = self._committed(height) if height >= 1 else None
        return None if record is None else view_block(record.block, record.certificate)

    def get_latest_block(self) -> dict[str, Any] | None:
        return self.get_block(self.store.get_height())

    def get_tx(self, tx_hash: bytes) -> dict[str, Any] | None:
        try:
            stored = self.store.get_tx(tx_hash)
        except BlockNotFound:
            pending = self.mempool.get(tx_hash)
            if pending is not None:
                return view_tx(pending)  # type: ignore[arg-type]
            dropped = self.mempool.dropped(tx_hash)
            if dropped is not None:  # it left the pool uncommitted: say why
                return {"hash": tx_hash.hex(), "status": "dropped", "error": {"code": dropped[0], "message": dropped[1]}}
            return None
        return view_tx(self.app.decode_tx(stored.data), stored.height, stored.index)

    def get_account(self, address: str) -> dict[str, Any]:
        return view_account(self.app.state, Address.parse(address))

    def get_validators(self, after: Address | None, limit: int) -> tuple[list[dict[str, Any]], Address | None]:
        state = self.app.state
        raws, last = _page_keys(state.kv.keys_in_table(VALIDATORS_TABLE), VALIDATORS_TABLE,
                                None if after is None else after.raw, limit)
        active = {info.address for info in get_validator_set(state, state.height + 1)}
        views = []
        for raw in raws:
            address = Address(raw)
            validator = state.get_validator(address)
            assert validator is not None  # its key was just listed
            views.append(dict(view_validator(address, validator), active=address in active))
        return views, None if last is None else Address(last)

    def get_jobs(self, after: bytes | None, limit: int) -> tuple[list[dict[str, Any]], bytes | None]:
        state = self.app.state
        job_ids, last = _page_keys(state.kv.keys_in_table(JOBS_TABLE), JOBS_TABLE, after, limit)
        views = []
        for job_id in job_ids:
            job = state.get_job(job_id)
            assert job is not None  # its key was just listed
            views.append(view_job(job_id, job))
        return views, last

    def get_job(self, job_id: bytes) -> dict[str, Any] | None:
        job = self.app.state.get_job(job_id)
        return None if job is None else view_job(job_id, job)

    def get_nodes(self) -> list[dict[str, Any]]:
        nodes = []
        for peer in self.host.peers:
            signed = self.host.get_peer_record(peer)
            record = signed.record if signed else None
            nodes.append({"node_id": str(peer), "address": record.address if record else None,
                          "roles": sorted(record.roles) if record else [],
                          "capabilities": dict(record.capabilities) if record else {}})
        return nodes

    def get_params(self) -> dict[str, Any]:
        return {"ledger": self.app.state.params.to_dict(), "consensus": asdict(self.spec.params)}

    async def get_artifact(self, cid: str) -> bytes | None:
        """The artifact from the local content store, else from the first peer that has it
        (checked against its CID, then kept here within the upload quota, as a cache that
        is not kept when there is no room: `_keep_fetched`). Asks to each peer are paced
        (`ARTIFACT_ASKS_PER_S`); `NodeBusy` when a peer that was not asked (its pace used
        up) might have had it."""
        wanted = Cid.parse(cid)
        try:
            return await asyncio.to_thread(self.content.get, wanted)  # read and hash off the event loop
        except ContentNotFound:
            pass
        skipped = False
        for peer in list(self.host.peers):
            pace = self._get_artifact_pace(peer)
            if not pace.take(self.host.clock.now()):
                skipped = True
                continue
            try:
                data = await self.host.request(peer, GET_PROTOCOL, wanted.to_bytes(), ARTIFACT_FETCH_TIMEOUT_S)
            except BcaiError:
                pace.tokens -= 1  # the peer charged its answer too (may go below 0: a debt)
                continue  # that peer does not have it (or is gone): ask the next
            if len(data) < BULK_FREE_BYTES:
                pace.tokens -= 1
            if wanted.matches(data):
                await self._keep_fetched(wanted, data)
                return data
            self.host.penalize(peer, scoring.PENALTY_BAD_CONTENT, f"wrong bytes for {wanted}")
        if skipped:
            raise NodeBusy(f"too many artifact lookups for this node's peers: ask for {cid} again shortly")
        return None

    def _get_artifact_pace(self, peer: NodeId) -> TokenBucket:
        bucket = self.artifact_asks.get(peer)
        if bucket is None:
            if len(self.artifact_asks) > 2 * len(self.host.peers):  # forget peers that left
                connected = set(self.host.peers)
                self.artifact_asks = {p: b for p, b in self.artifact_asks.items() if p in connected}
            now = self.host.clock.now()
            bucket = self.artifact_asks[peer] = TokenBucket.full(ARTIFACT_ASKS_PER_S, ARTIFACT_ASKS_BURST, now)
        return bucket

    def has_artifact(self, cid: Cid) -> bool:
        return self.content.has(cid)

    def get_renewal_cost(self, cid: Cid) -> int:
        return self._get_uploads().renewal_cost(str(cid))

    def renew_artifact(self, cid: Cid) -> bool:
        if not self.content.has(cid):
            return False
        self._get_uploads().renew(str(cid))
        return True

    async def put_artifact(self, cid: Cid, data: bytes) -> None:
        """Store checked bytes for an API client: recorded in the upload ledger within its
        quota first (evicting old unpinned uploads, or `StorageFull`), then written (off the
        event loop: up to 16 MiB)."""
        await self._store_within_quota(cid, data, fetched=False)

    async def _keep_fetched(self, cid: Cid, data: bytes) -> None:
        """Keep checked bytes fetched from a peer within the same quota (a cache: see
        `UploadLedger.admit_fetched`); with no room (or no disk) they are served, not kept."""
        try:
            await self._store_within_quota(cid, data, fetched=True)
        except (StorageFull, ContentStoreFull) as exc:
            log.info("fetched artifact not kept", extra={"cid": str(cid), "reason": exc.code})

    async def _store_within_quota(self, cid: Cid, data: bytes, fetched: bool) -> None:
        uploads = self._get_uploads()
        key = str(cid)
        admit = uploads.admit_fetched if fetched else uploads.admit
        evicted = admit(key, len(data), self._find_pinned_artifacts, self._evict_artifact)
        if evicted:
            log.info("evicted API uploads for room", extra={"count": len(evicted), "cid": key})
        try:
            await asyncio.to_thread(self.content.put_verified, cid, data)
        except BaseException:
            uploads.forget(key)
            raise

    def _evict_artifact(self, cid: str) -> None:
        self.content.delete(Cid.parse(cid))

    def _find_pinned_artifacts(self) -> set[str]:
        roots = [cid for _, job in self.app.state.get_all_jobs() for cid in find_job_references(job)]
        return find_pinned_artifacts(roots, self.content)

    def _get_uploads(self) -> UploadLedger:
        if self._uploads is None:
            api = self.config.api
            root = getattr(self.content, "root", None)  # next to a FileContentStore; in memory otherwise
            path = ":memory:" if root is None else Path(root).parent / "uploads.db"
            self._uploads = UploadLedger(path, api.upload_quota_bytes, api.upload_evict_after_s)
            self._uploads.forget_missing(self.content.has)
        return self._uploads

    async def post_job_message(self, job_id: bytes, data: bytes) -> int:
        return await self.jobs.post(job_id, data)

    async def get_job_messages(self, job_id: bytes, after: int) -> dict[str, Any] | None:
        found = await self.jobs.read(job_id, after)
        if found is None:
            return None
        messages, next_index = found
        return {"messages": [{"index": i, "data": data.hex()} for i, data in messages], "next": next_index}

    def render_metrics(self) -> bytes:
        self.metrics.peers.set(len(self.host.peers))
        self.metrics.mempool_txs.set(len(self.mempool))
        return self.metrics.render()
