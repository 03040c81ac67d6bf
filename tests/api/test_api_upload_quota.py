"""The quota on content uploaded through `POST /artifacts`: a per-client allowance per window
(429 `upload_quota` with Retry-After), a node-wide quota whose oldest unpinned uploads past
their grace are evicted for room (else 507 `storage_full`, nothing evicted), an object
already held stored once (a re-upload renews its grace for part of the allowance), and what jobs still need (a live job's spec, its datasets and their
chunks; a completed job's models) never evicted.

The API runs over the real `NodeReads` upload path with an in-memory content store and a
ledger state holding the jobs (no node: nothing here needs consensus)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from bcai.api import create_app
from bcai.crypto import CODEC_DAG_CBOR, Cid, PrivateKey, sha256
from bcai.crypto.objects import compute_chunks
from bcai.errors import ConfigError, StorageFull
from bcai.ledger import Genesis, Job, compute_genesis_state
from bcai.node.config import ApiConfig, NodeConfig, load_config, save_config
from bcai.node.service import NodeReads
from bcai.node.uploads import UploadLedger
from bcai.store import MemoryContentStore
from bcai.training.spec import JobSpec

from api_support import connected_peer, serving

CLIENT = PrivateKey.from_label("quota-client")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class QuotaReads(NodeReads):
    def __init__(self, api: ApiConfig) -> None:
        self.app = SimpleNamespace(state=compute_genesis_state(Genesis("bcai-quota")))  # type: ignore[assignment]
        self.content = MemoryContentStore()  # type: ignore[assignment]
        self.config = SimpleNamespace(api=api)  # type: ignore[assignment]
        self.clock = Clock()
        self._get_uploads().clock = self.clock

    def add_job(self, spec_cid: Cid, status: str = "open", results: tuple[Cid, ...] = ()) -> bytes:
        job_id = bytes([len(self.app.state.get_all_jobs()) + 1]) * 32
        job = Job(CLIENT.address, spec_cid, 10, 10, 1, 6000, 100, 1, 1, 5, 1, status=status)
        job.results = {bytes([i]) * 20: (cid.to_bytes(), 1) for i, cid in enumerate(results)}
        self.app.state.set_job(job_id, job)
        return job_id

    def set_status(self, job_id: bytes, status: str) -> None:
        job = self.app.state.get_job(job_id)
        job.status = status
        self.app.state.set_job(job_id, job)


def start(quota: int = 1 << 30, client_bytes: int = 1 << 30, window_s: int = 3600,
          evict_after_s: int = 60) -> tuple[QuotaReads, TestClient]:
    api = ApiConfig(upload_quota_bytes=quota, upload_client_bytes=client_bytes, upload_window_s=window_s,
                    upload_evict_after_s=evict_after_s, rate_limit_per_s=10_000)
    reads = QuotaReads(api)
    return reads, TestClient(create_app(reads, api), base_url="http://node")  # type: ignore[arg-type]


def blob(tag: int, size: int = 1000) -> bytes:
    return bytes([tag]) * size


def upload(api: TestClient, data: bytes, cid: Cid | None = None, client: TestClient | None = None) -> tuple[int, str]:
    response = (client or api).post("/artifacts" if cid is None else f"/artifacts/{cid}", content=data)
    body = response.json()
    return response.status_code, body["cid"] if response.status_code == 201 else body["error"]["code"]


def test_oldest_unpinned_uploads_past_their_grace_are_evicted_for_room() -> None:
    reads, api = start(quota=3000, evict_after_s=60)
    for tag in (1, 2, 3):
        assert upload(api, blob(tag))[0] == 201
        reads.clock.now += 10
    assert reads._get_uploads().total == 3000
    status, code = upload(api, blob(4))
    assert (status, code) == (507, "storage_full")  # all three within their grace: none evicted
    assert all(reads.content.has(Cid.of(blob(tag))) for tag in (1, 2, 3))
    reads.clock.now += 45  # blob 1 (and 2) past the grace now; 1 is the oldest
    assert upload(api, blob(4))[0] == 201
    assert not reads.content.has(Cid.of(blob(1)))
    assert all(reads.content.has(Cid.of(blob(tag))) for tag in (2, 3, 4))
    assert reads._get_uploads().total == 3000


def test_an_upload_larger_than_the_quota_evicts_nothing() -> None:
    reads, api = start(quota=3000, evict_after_s=0)
    upload(api, blob(1))
    reads.clock.now += 10
    assert upload(api, blob(2, 3001)) == (507, "storage_full")
    assert reads.content.has(Cid.of(blob(1)))
    empty, _ = start(quota=0)
    assert upload(_, blob(3))[0] == 507  # quota 0: the node takes no uploads


def test_already_stored_objects_are_stored_once_and_a_reupload_restarts_their_grace() -> None:
    reads, api = start(quota=1500, client_bytes=1500, evict_after_s=60)
    data = blob(1)
    assert upload(api, data) == (201, str(Cid.of(data)))
    for _ in range(3):  # again at once (a retry): nothing more stored, and no grace to buy back
        assert upload(api, data)[0] == 201
        assert upload(api, data, Cid.of(data))[0] == 201
    assert reads._get_uploads().total == 1000
    held = blob(9, 5000)  # held already for another reason (fetched from a peer): free, and never ours to evict
    reads.content.put(held)
    assert upload(api, held)[0] == 201 and reads._get_uploads().total == 1000
    reads.clock.now += 30

    def uploaded_at() -> float:
        return reads._get_uploads().db.execute("SELECT at FROM uploads WHERE cid = ?", (str(Cid.of(data)),)).fetchone()[0]

    before = uploaded_at()
    wrong = api.post(f"/artifacts/{Cid.of(data)}", content=b"not its bytes")
    assert wrong.status_code == 400 and uploaded_at() == before  # naming a held CID without its bytes renews nothing
    assert upload(api, data)[0] == 201 and uploaded_at() == reads.clock.now  # re-uploaded: its grace starts again
    assert upload(api, blob(2)) == (429, "upload_quota")  # the allowance: 1000 + 500 (half a grace renewed) of 1500
    api_b = TestClient(api.app, base_url="http://node", client=("10.0.0.2", 1))
    assert upload(api, blob(2), client=api_b) == (507, "storage_full")  # blob 1 is within its renewed grace
    assert reads.content.has(Cid.of(data)) and reads.content.has(Cid.of(held))


def test_resending_uploads_every_grace_period_costs_the_allowance_so_they_are_not_kept_forever() -> None:
    # re-uploading used to be free and restart the grace: a client re-sending its uploads
    # every `upload_evict_after_s` kept them from eviction for ever, at no cost
    reads, api = start(quota=2000, client_bytes=2000, window_s=3600, evict_after_s=60)
    data = blob(1, 1500)
    assert upload(api, data)[0] == 201
    reads.clock.now += 61  # the grace is over: renewing it costs what a new upload of it would
    response = api.post("/artifacts", content=data)
    assert response.status_code == 429 and response.json()["error"]["code"] == "upload_quota"
    assert "1500 more bytes" in response.json()["error"]["message"]
    other = TestClient(api.app, base_url="http://node", client=("10.0.0.2", 1))
    assert upload(api, blob(2, 1000), client=other)[0] == 201  # so another client's upload may evict it
    assert not reads.content.has(Cid.of(data))


def test_renewal_cost_is_the_part_of_the_grace_bought_back() -> None:
    ledger = UploadLedger(":memory:", quota_bytes=10_000, evict_after_s=100, clock=Clock())
    ledger.admit("a", 1000, set, lambda cid: None)
    assert ledger.renewal_cost("a") == 0 and ledger.renewal_cost("not-an-upload") == 0
    ledger.clock.now += 25  # type: ignore[attr-defined]
    assert ledger.renewal_cost("a") == 250
    ledger.clock.now += 1000  # type: ignore[attr-defined]
    assert ledger.renewal_cost("a") == 1000  # never more than its size
    ledger.renew("a")
    assert ledger.renewal_cost("a") == 0
    ledger.evict_after_s = 0  # no grace at all: every renewal costs the whole size
    assert ledger.renewal_cost("a") == 1000


def test_client_allowance_per_window_is_429_with_retry_after() -> None:
    reads, api = start(client_bytes=2500, window_s=100)
    assert upload(api, blob(1))[0] == 201
    assert upload(api, blob(2))[0] == 201
    response = api.post("/artifacts", content=blob(3))
    assert response.status_code == 429 and response.json()["error"]["code"] == "upload_quota"
    assert 1 <= int(response.headers["retry-after"]) <= 20  # 500 more bytes at 25 bytes/s
    assert not reads.content.has(Cid.of(blob(3)))
    other = TestClient(api.app, base_url="http://node", client=("10.0.0.9", 1))
    assert upload(api, blob(3), client=other)[0] == 201  # another client has its own allowance
    ipv6_a = TestClient(api.app, base_url="http://node", client=("2001:db8::1", 1))
    ipv6_b = TestClient(api.app, base_url="http://node", client=("2001:db8::2", 1))  # the same /64
    assert upload(api, blob(4, 2000), client=ipv6_a)[0] == 201
    assert upload(api, blob(5, 1000), client=ipv6_b)[0] == 429
    too_big = api.post("/artifacts", content=blob(6, 2501))
    assert too_big.status_code == 429 and "retry-after" not in too_big.headers  # never fits: no point retrying


def test_a_refused_store_does_not_use_up_the_client_allowance() -> None:
    reads, api = start(quota=1000, client_bytes=2500, evict_after_s=3600)
    assert upload(api, blob(1))[0] == 201
    for _ in range(5):
        assert upload(api, blob(2))[0] == 507
    reads._get_uploads().quota_bytes = 2000
    assert upload(api, blob(2))[0] == 201  # 1000 + 1000 of the 2500 allowance: the refusals cost nothing
    assert upload(api, blob(3))[0] == 429


def test_content_jobs_need_is_never_evicted() -> None:
    reads, api = start(quota=10_000, evict_after_s=60)
    dataset = b"".join(sha256(bytes([i])) for i in range(96))  # 3,072 bytes in three distinct 1,024-byte chunks
    manifest, pieces = compute_chunks(dataset, chunk_size=1024)
    test_set = blob(7, 500)
    spec = JobSpec("pinned", "bml", str(manifest.cid), str(Cid.of(test_set)), 10)
    for cid, data in [*zip(manifest.chunks, pieces), (manifest.cid, manifest.to_bytes()), (Cid.of(test_set), test_set),
                      (spec.cid, spec.to_bytes())]:
        assert upload(api, data, cid)[0] == 201
    model = blob(8, 1000)
    assert upload(api, model)[0] == 201
    pinned = {*manifest.chunks, manifest.cid, Cid.of(test_set), spec.cid}
    assert spec.cid.codec == CODEC_DAG_CBOR and manifest.cid.codec == CODEC_DAG_CBOR
    live = reads.add_job(spec.cid)
    done = reads.add_job(Cid.of(b"another spec"), status="completed", results=(Cid.of(model),))
    reads.clock.now += 10
    fillers = [blob(20 + i, 1000) for i in range(4)]
    for data in fillers:
        assert upload(api, data)[0] == 201
    used = reads._get_uploads().total
    reads.clock.now += 3600  # everything is past its grace
    for i in range(4):  # each new one evicts a filler, never what the jobs need
        assert upload(api, blob(40 + i, 10_000 - used + 1 if i == 0 else 1000))[0] == 201
    assert all(reads.content.has(cid) for cid in pinned) and reads.content.has(Cid.of(model))
    assert not any(reads.content.has(Cid.of(data)) for data in fillers)
    # left: what the jobs need, and the four just uploaded (within their grace)
    assert upload(api, blob(50, 3000)) == (507, "storage_full")
    assert all(reads.content.has(cid) for cid in pinned)
    reads.set_status(live, "failed")  # the job is over: its data may go now
    assert upload(api, blob(50, 3000))[0] == 201
    assert not all(reads.content.has(cid) for cid in pinned)
    assert reads.content.has(Cid.of(model))  # a completed job's model stays


def test_upload_ledger_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "uploads.db"
    ledger = UploadLedger(path, 3000, 0)
    gone = str(Cid.of(b"gone"))
    ledger.admit(gone, 1000, set, lambda cid: None)
    ledger.admit(str(Cid.of(b"kept")), 1000, set, lambda cid: None)
    ledger.close()
    again = UploadLedger(path, 3000, 0)
    assert again.total == 2000 and gone in again
    store = MemoryContentStore()
    store.put(b"kept")
    again.forget_missing(store.has)  # "gone" is no longer in the store
    assert again.total == 1000
    with pytest.raises(StorageFull):
        again.admit("b", 2001, lambda: {str(Cid.of(b"kept"))}, lambda cid: None)


@pytest.mark.parametrize("key, value", [
    ("upload_quota_bytes", -1), ("upload_client_bytes", -5), ("upload_window_s", 0), ("upload_evict_after_s", -1),
    ("max_body_bytes", 0), ("rate_limit_per_s", 0), ("header_timeout_s", 0), ("body_timeout_s", 0),
    ("send_timeout_s", -1), ("max_downloads", 0), ("max_body_bytes_in_flight", (16 << 20) - 1),
])
def test_invalid_api_config_is_refused(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=key):
        ApiConfig(**{key: value})


def test_upload_config_round_trips_and_is_type_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(NodeConfig("n", "bcai-x", api=ApiConfig(upload_quota_bytes=5 << 30)), path)
    assert load_config(path).api.upload_quota_bytes == 5 << 30
    path.write_text(path.read_text().replace("upload_window_s = 3600", 'upload_window_s = "1h"'))
    with pytest.raises(ConfigError, match="api.upload_window_s must be int"):
        load_config(path)


def test_a_node_keeps_its_upload_ledger_next_to_its_content(node_home: Path) -> None:
    async def scenario() -> None:
        async with serving(node_home) as (node, client):
            data = b"kept by a real node"
            assert (await client.post("/artifacts", content=data)).status_code == 201
            assert str(Cid.of(data)) in node._get_uploads() and node._get_uploads().total == len(data)
            assert (node_home / "data" / "uploads.db").is_file()
    asyncio.run(scenario())


def test_content_fetched_from_peers_is_kept_within_the_quota(node_home: Path) -> None:
    # GET /artifacts of content only a peer holds used to store it outside any bound: clients
    # asking for large peer content (a job's huge dataset) could fill the node's disk
    async def scenario() -> None:
        peer_blobs = [blob(tag) for tag in (1, 2, 3, 4)]
        async with serving(node_home, ApiConfig(rate_limit_per_s=10_000)) as (node, client):
            async with connected_peer(node, tuple(peer_blobs)):
                uploads = node._get_uploads()
                uploads.quota_bytes = 2500

                async def fetch(data: bytes) -> None:
                    answer = await client.get(f"/artifacts/{Cid.of(data)}")
                    assert answer.status_code == 200 and answer.content == data

                def kept() -> list[bool]:
                    return [node.content.has(Cid.of(data)) for data in peer_blobs]

                await fetch(peer_blobs[0])
                await fetch(peer_blobs[1])
                assert kept() == [True, True, False, False] and uploads.total == 2000
                await fetch(peer_blobs[2])  # a cache: the oldest fetch makes room
                assert kept() == [False, True, True, False] and uploads.total == 2000
                mine = blob(7, 2000)
                stored = await client.post("/artifacts", content=mine)
                assert stored.status_code == 201  # an upload evicts fetched content, never the reverse
                assert kept() == [False, False, False, False] and uploads.total == 2000
                await fetch(peer_blobs[3])  # no room but an upload in its grace: served, not kept
                assert kept() == [False, False, False, False] and node.content.has(Cid.of(mine))
                assert uploads.total == 2000
    asyncio.run(scenario())
