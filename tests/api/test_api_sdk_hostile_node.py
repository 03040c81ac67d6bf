"""The SDK against a broken or hostile node (an httpx mock transport plays the node): every
answer that is not what the API promises (not JSON, the wrong shape, a body that does not
decode, a download that never ends) is a clear `bcai` error, never a KeyError or TypeError."""

from __future__ import annotations

import gzip
import json
from typing import Any, Callable, Iterator

import httpx
import pytest

from bcai.crypto import Cid, PrivateKey
from bcai.crypto.objects import compute_chunks
from bcai.errors import ClientError, InvalidManifest
from bcai.sdk import Client
from bcai.sdk.client import BUSY_RETRIES

KEY = PrivateKey.from_label("sdk-hostile")
JOB = "ab" * 32


def client_of(answer: Callable[[httpx.Request], httpx.Response]) -> Client:
    client = Client("http://node", key=KEY)
    client._http = httpx.Client(base_url="http://node", transport=httpx.MockTransport(answer))
    return client


def json_answer(routes: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """Answer 200 with `routes[path]` as JSON (raw bytes are sent as they are)."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = routes.get(request.url.path, {})
        return httpx.Response(200, content=body if isinstance(body, bytes) else json.dumps(body).encode())

    return answer


GOOD_STATUS = {"chain_id": "bcai-x"}
GOOD_PARAMS = {"ledger": {"min_fee": 1}}
GOOD_ACCOUNT = {"balance": 10, "nonce": 0}
ACCOUNT = f"/accounts/{KEY.address}"

CALLS: list[tuple[str, Callable[[Client], Any], dict[str, Any]]] = [
    # (what, the SDK call, what the node answers on which path)
    ("status not JSON", Client.status, {"/status": b"<html>oops</html>"}),
    ("status a list", Client.status, {"/status": [1, 2]}),
    ("validators an object", Client.validators, {"/validators": {"a": 1}}),
    ("balance missing", Client.balance, {ACCOUNT: {"nonce": 0}}),
    ("balance a string", Client.balance, {ACCOUNT: {"balance": "lots"}}),
    ("tx a string", lambda c: c.tx("00" * 32), {"/txs/" + "00" * 32: "committed"}),
    ("chain id missing", lambda c: c.chain_id, {"/status": {}}),
    ("chain id a number", lambda c: c.chain_id, {"/status": {"chain_id": 7}}),
    ("min fee missing", lambda c: c.transfer(KEY.address, 1),
     {"/status": GOOD_STATUS, "/params": {"ledger": None}, ACCOUNT: GOOD_ACCOUNT}),
    ("nonce a bool", lambda c: c.transfer(KEY.address, 1),
     {"/status": GOOD_STATUS, "/params": GOOD_PARAMS, ACCOUNT: {"nonce": True}}),
    ("tx accepted without a hash", lambda c: c.transfer(KEY.address, 1),
     {"/status": GOOD_STATUS, "/params": GOOD_PARAMS, ACCOUNT: GOOD_ACCOUNT, "/txs": {"ok": 1}}),
    ("batch without results", lambda c: c.submit_txs([b"\x00"]), {"/txs/batch": {"res": []}}),
    ("batch result not an object", lambda c: c.submit_txs([b"\x00"]), {"/txs/batch": {"results": ["x"]}}),
    ("batch error without a code", lambda c: c.submit_txs([b"\x00"]),
     {"/txs/batch": {"results": [{"hash": None, "error": {"message": "no"}}]}}),
    ("batch hash a number", lambda c: c.submit_txs([b"\x00"]), {"/txs/batch": {"results": [{"hash": 5}]}}),
    ("job message index missing", lambda c: c.post_job_message(JOB, b"x"),
     {"/status": GOOD_STATUS, f"/jobs/{JOB}/messages": {}}),
    ("job messages without a list", lambda c: c.job_messages(JOB),
     {"/status": GOOD_STATUS, f"/jobs/{JOB}/messages": {"messages": None, "next": 0}}),
    ("job messages without next", lambda c: c.job_messages(JOB),
     {"/status": GOOD_STATUS, f"/jobs/{JOB}/messages": {"messages": []}}),
]


@pytest.mark.parametrize("what, call, routes", CALLS, ids=[c[0] for c in CALLS])
def test_invalid_answers_are_bad_reply_errors(what: str, call: Callable[[Client], Any], routes: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        call(client_of(json_answer(routes)))
    assert caught.value.code == "bad_reply", caught.value


def test_invalid_job_message_items_are_skipped_not_raised() -> None:
    routes = {"/status": GOOD_STATUS, f"/jobs/{JOB}/messages": {"messages": [{"index": 0}, 5, {"data": 3}], "next": 3}}
    assert client_of(json_answer(routes)).job_messages(JOB) == ([], 3)


def test_invalid_error_bodies_keep_the_status() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        bodies = {"/status": b"Internal Server Error", "/params": b'{"error": {"code": 5, "message": null}}',
                  "/jobs": b'{"error": "boom"}'}
        return httpx.Response(500 if request.url.path == "/status" else 418, content=bodies[request.url.path])

    client = client_of(answer)
    for call, status, code in [(Client.status, 500, "http_error"), (Client.params, 418, "5"),
                               (Client.jobs, 418, "http_error")]:
        with pytest.raises(ClientError) as caught:
            call(client)
        assert (caught.value.http_status, caught.value.code) == (status, code)


def test_invalid_content_encoding_is_a_bad_reply() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip at all", headers={"content-encoding": "gzip"})

    with pytest.raises(ClientError) as caught:
        client_of(answer).status()
    assert caught.value.code == "bad_reply"
    good = gzip.compress(json.dumps(GOOD_STATUS).encode())
    ok = client_of(lambda request: httpx.Response(200, content=good, headers={"content-encoding": "gzip"}))
    assert ok.status() == GOOD_STATUS


def test_invalid_endless_download_is_given_up_at_the_expected_length() -> None:
    """A node that streams far more than a chunk's length (or than `max_bytes` for a blob):
    the SDK stops reading there, instead of holding it all before checking."""
    data = bytes(range(256)) * 40  # 10,240 bytes
    manifest, _ = compute_chunks(data, chunk_size=4096)
    sent: list[int] = []

    def flood() -> Iterator[bytes]:
        for _ in range(4096):  # 256 MiB if read to the end
            sent.append(1)
            yield b"\x00" * 65536

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/artifacts/{manifest.cid}":
            return httpx.Response(200, content=manifest.to_bytes())
        return httpx.Response(200, content=flood())

    client = client_of(answer)
    with pytest.raises(InvalidManifest, match="more than"):
        client.download(manifest.cid)
    assert len(sent) <= 3 * 2  # each of the 3 chunks given up within its first 64 KiB piece (or next)
    sent.clear()
    with pytest.raises(InvalidManifest, match="more than"):
        client.download(manifest.chunks[0], max_bytes=100_000)  # a raw blob: max_bytes is its bound
    assert len(sent) <= 3



def busy_twice_then(last: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """A node answering 503 node_busy twice, then `last`."""
    answers = [503, 503]

    def answer(request: httpx.Request) -> httpx.Response:
        if answers:
            answers.pop()
            return httpx.Response(503, json={"error": {"code": "node_busy", "message": "later"}})
        return last

    return answer


def test_a_busy_node_is_asked_again_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"a piece the node must fetch from its peers"
    cid = Cid.of(data)
    waits: list[float] = []
    monkeypatch.setattr("bcai.sdk.client.time.sleep", waits.append)
    assert client_of(busy_twice_then(httpx.Response(200, content=data))).download(cid) == data
    assert waits == [0.1, 0.2]
    waits.clear()
    always_busy = client_of(lambda request: httpx.Response(503, json={"error": {"code": "node_busy", "message": "no"}}))
    with pytest.raises(ClientError) as caught:
        always_busy.download(cid)
    assert caught.value.code == "node_busy" and caught.value.retryable and len(waits) == BUSY_RETRIES


def test_a_busy_node_gets_an_upload_again_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"a piece the node had no room for at first"
    waits: list[float] = []
    monkeypatch.setattr("bcai.sdk.client.time.sleep", waits.append)
    assert client_of(busy_twice_then(httpx.Response(201, json={"cid": str(Cid.of(data))}))).upload(data) == Cid.of(data)
    assert waits == [0.1, 0.2]
    quota = client_of(lambda request: httpx.Response(429, json={"error": {"code": "upload_quota", "message": "no"}}))
    with pytest.raises(ClientError) as caught:
        quota.upload(data)
    assert caught.value.code == "upload_quota" and caught.value.retryable and waits == [0.1, 0.2]
