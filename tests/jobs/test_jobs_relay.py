"""The job channel: `JobMessage` checks, the node's `JobRelay`, the API's job-message routes
and the SDK / `HttpJobChannel` against a real in-process single-validator node (its REST
API served by uvicorn on a free port, so the synchronous SDK talks real HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bcai.crypto import Cid, PrivateKey
from bcai.errors import BcaiError, ClientError, InvalidJobMessage
from bcai.ledger import Capabilities, PostJob
from bcai.node import init_home
from bcai.node.config import ApiConfig, P2PConfig
from bcai.node.embedded import running_node
from bcai.node.job_relay import MAX_JOBS, JobRelay
from bcai.p2p import job_topic
from bcai.p2p.host import GossipMessage
from bcai.sdk import Client
from bcai.sdk.job_message import MAX_MESSAGE_BYTES, JobMessage
from bcai.training.jobflow import HttpJobChannel

CHAIN = "bcai-jobtest"
JOB = bytes(range(32))
OTHER_JOB = bytes(32)


# --- JobMessage ----------------------------------------------------------------------------------


def test_job_message_round_trip() -> None:
    key = PrivateKey.from_label("alice")
    data = JobMessage.create(key, CHAIN, JOB, b"hello").to_bytes()
    message = JobMessage.from_bytes(data, CHAIN)
    assert (message.job_id, message.sender, message.payload) == (JOB, key.public_key, b"hello")


def test_invalid_job_message_signature_chain_size_and_shape() -> None:
    key = PrivateKey.from_label("alice")
    good = JobMessage.create(key, CHAIN, JOB, b"payload")
    forged = JobMessage(good.job_id, good.sender, b"other payload", good.signature).to_bytes()
    with pytest.raises(InvalidJobMessage, match="bad job message"):
        JobMessage.from_bytes(forged, CHAIN)
    with pytest.raises(InvalidJobMessage):  # signed for another chain
        JobMessage.from_bytes(good.to_bytes(), "bcai-other")
    with pytest.raises(InvalidJobMessage, match="over"):
        JobMessage.from_bytes(b"\x00" * (MAX_MESSAGE_BYTES + 1), CHAIN)
    with pytest.raises(InvalidJobMessage):  # not CBOR at all
        JobMessage.from_bytes(b"\xff\x00garbage", CHAIN)
    with pytest.raises(InvalidJobMessage, match="field types"):  # a job id that is not 32 bytes
        JobMessage.from_bytes(JobMessage.create(key, CHAIN, b"short", b"x").to_bytes(), CHAIN)


def test_invalid_job_message_from_a_non_participant_or_for_an_unknown_job() -> None:
    alice, mallory = PrivateKey.from_label("alice"), PrivateKey.from_label("mallory")
    relay = JobRelay(host=None, chain_id=CHAIN,  # type: ignore[arg-type]  # `check` never touches the host
                     get_participants=lambda job: {alice.address} if job == JOB else None)
    assert relay.check(JobMessage.create(alice, CHAIN, JOB, b"ok").to_bytes()).payload == b"ok"
    with pytest.raises(InvalidJobMessage, match="not a participant"):
        relay.check(JobMessage.create(mallory, CHAIN, JOB, b"x").to_bytes())
    with pytest.raises(InvalidJobMessage, match="no job"):
        relay.check(JobMessage.create(alice, CHAIN, OTHER_JOB, b"x").to_bytes())


class _RecordingHost:
    """What `JobRelay` needs of a host: topic (un)subscriptions, recorded; publishing is a no-op."""

    def __init__(self) -> None:
        self.topics: set[str] = set()

    async def subscribe(self, topic: str, handler: Any) -> None:
        self.topics.add(topic)

    async def unsubscribe(self, topic: str) -> None:
        self.topics.discard(topic)

    async def publish(self, topic: str, data: bytes) -> None:
        pass


def test_invalid_reads_of_made_up_job_ids_do_not_evict_a_real_jobs_messages() -> None:
    alice = PrivateKey.from_label("alice")
    host = _RecordingHost()
    relay = JobRelay(host=host, chain_id=CHAIN,  # type: ignore[arg-type]
                     get_participants=lambda job: {alice.address} if job == JOB else None)

    async def scenario() -> None:
        kept = JobMessage.create(alice, CHAIN, JOB, b"keep me").to_bytes()
        assert await relay.post(JOB, kept) == 0
        for i in range(MAX_JOBS + 10):  # a reader sprays job ids that are not on chain
            assert await relay.read(i.to_bytes(32, "big"), 0) is None
        found = await relay.read(JOB, 0)
        assert found == ([(0, kept)], 1)
        assert host.topics == {job_topic(JOB.hex())} and list(relay.logs) == [JOB]

    asyncio.run(scenario())


# --- against a real node -------------------------------------------------------------------------


def call(fn: Any, *args: Any) -> Any:
    return asyncio.to_thread(fn, *args)


async def commit(client: Client, tx_hash: str) -> dict[str, Any]:
    return await call(client.wait_for_tx, tx_hash, 30.0)


async def post_job(client: Client, label: str) -> str:
    height = (await call(client.status))["height"]
    body = PostJob(spec_cid=Cid.of(label.encode()), budget=1_000, required_evaluators=1, agreement_threshold_bps=100,
                   deadline_height=height + 1_000, min_workers=1, max_workers=1, worker_stake=10)
    return str((await commit(client, await call(client.post_job, body)))["hash"])


def assert_client_error(exc: BaseException, status: int, code: str) -> None:
    assert isinstance(exc, ClientError) and exc.http_status == status and exc.code == code, exc


def test_job_messages_through_the_api_sdk_and_http_channel(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, "job-test", ("validator",), CHAIN, p2p=P2PConfig(port=0))

    async def scenario() -> None:
        async with running_node(home) as (node, url):
            client = Client(url, key=node.key)  # the genesis-funded validator plays the job's client
            evaluator = Client(url, key=PrivateKey.from_label("evaluator"))
            worker = Client(url, key=PrivateKey.from_label("worker"))
            outsider = Client(url, key=PrivateKey.from_label("outsider"))
            for who in (evaluator, worker):
                await commit(client, await call(client.transfer, who.key.address, 10_000))
            await commit(evaluator, await call(evaluator.register_evaluator, 100))
            job_id = await post_job(client, "job-a")
            other_job = await post_job(client, "job-b")

            # participants post and read; the SDK checks every message it hands back
            assert await call(client.post_job_message, job_id, b"from the client") == 0
            assert await call(evaluator.post_job_message, job_id, b"from the evaluator") == 1
            messages, next_index = await call(worker.job_messages, job_id, 0)
            assert [(k.address, p) for k, p in messages] == [(node.key.address, b"from the client"),
                                                               (evaluator.key.address, b"from the evaluator")]
            assert next_index == 2
            assert (await call(worker.job_messages, job_id, 1))[0][0][1] == b"from the evaluator"
            assert await call(worker.job_messages, other_job, 0) == ([], 0)

            # every bad message is a 400 with a code, and nothing is kept
            for sender, target, chain in [(outsider, job_id, CHAIN), (worker, job_id, CHAIN),  # not participants
                                          (client, job_id, "bcai-other")]:  # signed for another chain
                raw = JobMessage.create(sender.key, chain, bytes.fromhex(job_id), b"x").to_bytes()
                response = await call(lambda: client._request("POST", f"/jobs/{target}/messages", content=raw))
                assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_job_message"
            with pytest.raises(ClientError) as caught:
                await call(outsider.post_job_message, job_id, b"let me in")
            assert_client_error(caught.value, 400, "invalid_job_message")
            for_other = JobMessage.create(node.key, CHAIN, bytes.fromhex(other_job), b"x").to_bytes()
            response = await call(lambda: client._request("POST", f"/jobs/{job_id}/messages", content=for_other))
            assert response.status_code == 400 and "another job" in response.json()["error"]["message"]
            unknown = JobMessage.create(node.key, CHAIN, b"\xab" * 32, b"x").to_bytes()
            response = await call(lambda: client._request("POST", f"/jobs/{'ab' * 32}/messages", content=unknown))
            assert response.status_code == 400 and "no job" in response.json()["error"]["message"]
            response = await call(lambda: client._request("POST", f"/jobs/{job_id}/messages", content=b"\x01garbage"))
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_job_message"
            response = await call(lambda: client._request("POST", "/jobs/not-hex/messages", content=for_other))
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_hex"
            response = await call(lambda: client._request("GET", f"/jobs/{job_id}/messages?after=-1"))
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_index"
            response = await call(lambda: client._request("GET", f"/jobs/{'ab' * 32}/messages"))
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
            huge = b"\x00" * (ApiConfig().max_body_bytes + 1)
            response = await call(lambda: client._request("POST", f"/jobs/{job_id}/messages", content=huge))
            assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
            assert (await call(worker.job_messages, job_id, 0))[1] == 2

            # the HttpJobChannel: what one participant publishes reaches another's subscriber
            got: list[bytes] = []
            listener = HttpJobChannel(evaluator, job_id, poll_s=0.05)
            listener.subscribe(got.append)
            speaker = HttpJobChannel(client, job_id, poll_s=0.05)
            await speaker.publish(b"over the channel")
            for _ in range(200):
                if b"over the channel" in got:
                    break
                await asyncio.sleep(0.02)
            assert got == [b"from the client", b"from the evaluator", b"over the channel"]
            listener.close()
            speaker.close()

            # a gossiped message from a signer this node does not know as a participant yet (the
            # sender's node is a block ahead) waits, and is served once the chain shows it joined
            early = JobMessage.create(worker.key, CHAIN, bytes.fromhex(job_id), b"early bird").to_bytes()
            handler = node.host._topics[job_topic(job_id)]
            await handler(GossipMessage(job_topic(job_id), early, b"id", node.host.node_id))
            assert (await call(client.job_messages, job_id, 3)) == ([], 3)
            caps = Capabilities(cpu_cores=1, memory_mb=512, gpu_count=0, gpu_memory_mb=0, bandwidth_mbps=10,
                                node_type="cpu")
            await commit(worker, await call(worker.register_worker, 100, caps))
            await commit(worker, await call(worker.volunteer, job_id))
            messages, _ = await call(client.job_messages, job_id, 3)
            assert [(k.address, p) for k, p in messages] == [(worker.key.address, b"early bird")]
            # a badly signed gossiped message is refused outright (the forwarding peer is at fault)
            with pytest.raises(BcaiError):
                forged = JobMessage(bytes.fromhex(job_id), worker.key.public_key, b"forged", b"\x00" * 64).to_bytes()
                await handler(GossipMessage(job_topic(job_id), forged, b"id2", node.host.node_id))
            for c in (client, evaluator, worker, outsider):
                c.close()

    asyncio.run(scenario())
