"""`bcai.Client`: the Python SDK over a node's REST API.

    from bcai.sdk import Client
    from bcai.crypto import PrivateKey

    client = Client("http://127.0.0.1:26657", key=PrivateKey.generate())
    tx_hash = client.transfer("bcai...", 1_000)
    receipt = client.wait_for_tx(tx_hash)

The key signs locally; only signed transaction bytes leave the process. Nonces come from
the chain and are then counted locally, so several transactions can be sent back to back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import httpx

from bcai.crypto import CODEC_DAG_CBOR, CODEC_RAW, Address, Cid, PrivateKey, PublicKey, sha256
from bcai.crypto.objects import DEFAULT_CHUNK_SIZE, Manifest, compute_chunks
from bcai.errors import BcaiError, ClientError, ConfigError, InvalidCid, InvalidManifest, NodeUnreachable, TxDropped, TxTimeout
from bcai.ledger.types import Amount, Bps, JobId
from bcai.ledger import (
    Attest, Bond, Capabilities, PostJob, RecordCheckpoint, RegisterEvaluator, RegisterWorker, SubmitResult, Transfer, TxBody, Unbond,
    Volunteer, encode_tx,
)
from bcai.sdk.job_message import JobMessage


MAX_BATCH_TXS = 1_000  # txs per POST /txs/batch (the API's default cap)
PAGE_SIZE = 500  # entries per GET /jobs, /validators page the iterators ask for
MAX_PAGE_SIZE = 1_000  # the API's hard cap on a page


MAX_DOWNLOAD_BYTES = 8 << 30  # the largest object `download` reassembles unless told otherwise
PARALLEL_PIECES = 4  # chunk requests in flight while uploading or downloading a large artifact
BUSY_RETRIES = 8  # a piece answered 503 node_busy (the node paces its asks to peers, bounds bodies held) is sent again after 0.1, 0.2, ... 12.8 s

T = TypeVar("T")


def _bad_reply(what: str) -> ClientError:
    return ClientError("bad_reply", f"the node's answer is not what the API promises: {what}", 0)


@contextlib.contextmanager
def node_answer() -> Iterator[None]:
    """Reading fields out of a node's answer (a job view, an account): a missing or mistyped
    one is the node's `bad_reply`, not a KeyError or TypeError of the caller."""
    try:
        yield
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise _bad_reply(f"{type(exc).__name__}: {exc}") from None


def _field(body: Any, key: str, kind: type[T]) -> T:
    """`body[key]` of a node's JSON answer, checked to be a `kind` (a broken or hostile node
    gets a `ClientError("bad_reply")`, never a KeyError or TypeError out of the SDK)."""
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad_reply(f"no {kind.__name__} {key!r} in {str(body)[:100]}")
    return value


def _unless_busy(call: Callable[[], T]) -> T:
    """`call()`, asked again after 0.1, 0.2, ... 12.8 s while the node answers 503
    `node_busy` (it paces its asks to peers, and bounds the request bodies it holds)."""
    for attempt in range(BUSY_RETRIES):
        try:
            return call()
        except ClientError as exc:
            if exc.code != "node_busy":
                raise
        time.sleep(0.1 * 2**attempt)
    return call()


@dataclass(frozen=True)
class TxOutcome:
    """What a node answered for one tx of a batch: `error` is None when it entered the
    mempool, else the node's error code (e.g. `tx_bad_signature`, `rate_limited`)."""

    hash: str  # hex; computed locally for a refused tx
    error: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.error is None


def check_node_url(url: str) -> str:
    """`url` without a trailing slash; `ConfigError` unless it is http(s)://HOST[:PORT][/PATH]."""
    try:
        parsed = httpx.URL(url)
        port_ok = parsed.port is None or 0 < parsed.port < 65536
    except httpx.InvalidURL as exc:
        raise ConfigError(f"bad node URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or not port_ok:
        raise ConfigError(f"bad node URL {url!r}: expected http://HOST:PORT, e.g. http://127.0.0.1:26657")
    return url.rstrip("/")


class Client:
    def __init__(self, url: str, key: PrivateKey | None = None, timeout_s: float = 10.0) -> None:
        self.url = check_node_url(url)
        self.key = key
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._chain_id: str | None = None
        self._next_nonce: int | None = None
        self._send_lock = threading.Lock()  # one tx at a time takes a nonce (jobs call from threads)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _http_errors(self) -> Iterator[None]:
        """httpx's errors as bcai's."""
        try:
            yield
        except httpx.TransportError as exc:  # refused, reset, timed out, or a body cut short
            raise NodeUnreachable(f"no node answers at {self.url}: {exc}") from None
        except httpx.DecodingError as exc:  # e.g. a body that is not the gzip it says it is
            raise _bad_reply(str(exc)) from None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._http_errors():
            return self._http.request(method, path, **kwargs)

    def _get(self, path: str, kind: type[T]) -> T:
        """The JSON answer to `GET path`, checked to be a `kind` (dict or list)."""
        return self._json(self._check(self._request("GET", path)), kind)

    @staticmethod
    def _json(response: httpx.Response, kind: type[T]) -> T:
        try:
            body = response.json()
        except ValueError:
            raise _bad_reply(f"not JSON: {response.text[:100]!r}") from None
        if not isinstance(body, kind):
            raise _bad_reply(f"not a JSON {kind.__name__}: {response.text[:100]!r}")
        return body

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                raise ClientError("http_error", response.text[:200], response.status_code) from None
            raise ClientError(str(code), str(message), response.status_code)
        return response

    def status(self) -> dict[str, Any]:
        return self._get("/status", dict)

    def params(self) -> dict[str, Any]:
        return self._get("/params", dict)

    def account(self, address: str | Address | None = None) -> dict[str, Any]:
        if address is None:
            address = self._require_key().address
        return self._get(f"/accounts/{address}", dict)

    def balance(self, address: str | Address | None = None) -> int:
        return _field(self.account(address), "balance", int)

    def block(self, height: int | None = None) -> dict[str, Any]:
        return self._get("/blocks/latest" if height is None else f"/blocks/{height}", dict)

    def validators(self) -> list[dict[str, Any]]:
        """Every validator (all pages of `GET /validators`), in address order."""
        return list(self.iter_validators())

    def jobs(self) -> list[dict[str, Any]]:
        """Every job on chain (all pages of `GET /jobs`), in job id order."""
        return list(self.iter_jobs())

    def iter_validators(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """The validators, a page (`page_size`, default `PAGE_SIZE`, at most 1,000) fetched as
        the last is used up."""
        return self._iter_pages("/validators", page_size)

    def iter_jobs(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """The chain's jobs, a page (`page_size`, default `PAGE_SIZE`, at most 1,000) fetched
        as the last is used up."""
        return self._iter_pages("/jobs", page_size)

    def page(self, path: str, limit: int = PAGE_SIZE, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a listing (`/jobs`, `/validators`): its entries and the next page's
        cursor (None on the last page)."""
        params: dict[str, Any] = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = self._check(self._request("GET", path, params=params))
        entries = self._json(response, list)
        if not all(isinstance(entry, dict) for entry in entries):
            raise _bad_reply(f"a {path} entry is not an object")
        return entries, response.headers.get("x-next-cursor")

    def _iter_pages(self, path: str, page_size: int | None) -> Iterator[dict[str, Any]]:
        page_size = PAGE_SIZE if page_size is None else page_size
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE_SIZE}, got {page_size}")
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            entries, cursor = self.page(path, page_size, cursor)
            yield from entries
            if cursor is None:
                return
            if cursor in seen or not entries:  # a node sending us round in circles
                raise _bad_reply(f"{path} pages do not advance (cursor {cursor[:80]!r})")
            seen.add(cursor)

    def job(self, job_id: str | bytes) -> dict[str, Any]:
        return self._get(f"/jobs/{job_id.hex() if isinstance(job_id, bytes) else job_id}", dict)

    def tx(self, tx_hash: str) -> dict[str, Any] | None:
        response = self._request("GET", f"/txs/{tx_hash}")
        if response.status_code == 404:
            return None
        return self._json(self._check(response), dict)

    # --- transactions --------------------------------------------------------------------

    def _require_key(self) -> PrivateKey:
        if self.key is None:
            raise ClientError("no_key", "this client has no key to sign with", 0)
        return self.key

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = _field(self.status(), "chain_id", str)
        return self._chain_id

    def send(self, body: TxBody, fee: int | None = None) -> str:
        """Sign `body` with the next nonce, submit it, return the tx hash (hex). Safe to call
        from several threads: each tx takes the next nonce in turn."""
        key = self._require_key()
        if fee is None:
            fee = _field(_field(self.params(), "ledger", dict), "min_fee", int)
        with self._send_lock:
            return self._send_signed(key, fee, body)

    def _send_signed(self, key: PrivateKey, fee: int, body: TxBody) -> str:
        if self._next_nonce is None:
            self._next_nonce = _field(self.account(key.address), "nonce", int)
        raw = encode_tx(key, self._next_nonce, fee, self.chain_id, body)
        try:
            response = self._check(self._request("POST", "/txs", json={"tx": raw.hex()}))
            tx_hash = _field(self._json(response, dict), "hash", str)
        except ClientError as exc:
            if exc.code != "tx_already_known":  # the very same bytes are pending: a retry that landed
                if exc.code == "tx_bad_nonce":
                    self._next_nonce = None  # resync from the chain next time
                raise
            tx_hash = sha256(raw).hex()
        self._next_nonce += 1
        return tx_hash

    def submit_txs(self, raws: Sequence[bytes], per_request: int = MAX_BATCH_TXS) -> list[TxOutcome]:
        """Submit signed txs (`POST /txs/batch`, `per_request` txs a request); one outcome per
        tx, in order. A refused tx is an outcome with its error code, never an exception;
        errors of the request itself (unreachable node, a refused envelope) raise."""
        outcomes: list[TxOutcome] = []
        if per_request < 1:
            raise ValueError(f"per_request must be at least 1, got {per_request}")
        for start in range(0, len(raws), per_request):
            chunk = raws[start:start + per_request]
            body = {"txs": [raw.hex() for raw in chunk]}
            response = self._check(self._request("POST", "/txs/batch", json=body))
            results = _field(self._json(response, dict), "results", list)
            if len(results) != len(chunk):
                raise _bad_reply(f"{len(results)} results for {len(chunk)} txs")
            for raw, result in zip(chunk, results):
                if not isinstance(result, dict):
                    raise _bad_reply(f"a batch result is not an object: {str(result)[:100]}")
                if result.get("error") is None:
                    outcomes.append(TxOutcome(_field(result, "hash", str), None, ""))
                else:
                    error = _field(result, "error", dict)
                    outcomes.append(TxOutcome(sha256(raw).hex(), _field(error, "code", str), _field(error, "message", str)))
        return outcomes

    def wait_for_tx(self, tx_hash: str, timeout_s: float = 30.0, poll_s: float = 0.1) -> dict[str, Any]:
        """Block until the tx is in a committed block; return its receipt. `TxDropped` (with
        the node's reason) as soon as the node says the tx left its mempool uncommitted."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.tx(tx_hash)
            if found is not None and found.get("status") == "committed":
                return found
            if found is not None and found.get("status") == "dropped":
                error = found.get("error")
                code, message = (str(error.get("code")), str(error.get("message"))) if isinstance(error, dict) \
                    else ("unknown", "no reason given")
                raise TxDropped(f"tx {tx_hash} was dropped by the node: {code}: {message}", reason=code)
            if time.monotonic() > deadline:
                raise TxTimeout(f"tx {tx_hash} not committed within {timeout_s} s")
            time.sleep(poll_s)

    def transfer(self, to: str | Address, amount: int, fee: int | None = None) -> str:
        to_address = to if isinstance(to, Address) else Address.parse(to)
        return self.send(Transfer(to=to_address, amount=Amount(amount)), fee)

    def bond(self, amount: int, fee: int | None = None) -> str:
        return self.send(Bond(amount=Amount(amount)), fee)

    def unbond(self, amount: int, fee: int | None = None) -> str:
        return self.send(Unbond(amount=Amount(amount)), fee)

    def register_worker(self, stake: int, capabilities: Capabilities, fee: int | None = None) -> str:
        return self.send(RegisterWorker(stake=Amount(stake), capabilities=capabilities), fee)

    def register_evaluator(self, stake: int, fee: int | None = None) -> str:
        return self.send(RegisterEvaluator(stake=Amount(stake)), fee)

    def post_job(self, body: PostJob, fee: int | None = None) -> str:
        """Post a job; its job id is the tx hash."""
        return self.send(body, fee)

    def volunteer(self, job_id: str, fee: int | None = None) -> str:
        return self.send(Volunteer(job_id=JobId(bytes.fromhex(job_id))), fee)

    def submit_result(self, job_id: str, model_cid: Cid, samples: int, metrics: dict[str, int],
                      fee: int | None = None) -> str:
        return self.send(SubmitResult(job_id=JobId(bytes.fromhex(job_id)), model_cid=model_cid,
                                      samples_processed=samples, metrics=metrics), fee)

    def attest(self, job_id: str, model_cid: Cid, accuracy_bps: int, accept: bool, fee: int | None = None) -> str:
        return self.send(Attest(job_id=JobId(bytes.fromhex(job_id)), model_cid=model_cid, accuracy_bps=Bps(accuracy_bps),
                                accept=accept), fee)

    def record_checkpoint(self, job_id: str, round_index: int, cid: Cid, fee: int | None = None) -> str:
        """Commit a federated job's round checkpoint CID on chain (an assigned worker only)."""
        return self.send(RecordCheckpoint(job_id=JobId(bytes.fromhex(job_id)), round=round_index, cid=cid), fee)

    # --- artifacts -----------------------------------------------------------------------

    def upload(self, data: bytes, codec: int = CODEC_RAW) -> Cid:
        """Store `data` on the node; return its id (`bcai.crypto.objects.compute_artifact_cid`).

        Up to one chunk (4 MiB) it is one blob under its own CID (raw codec unless told
        otherwise); larger data goes up as 4 MiB BLAKE3 chunks and then their manifest,
        whose CID is returned. `download` reassembles either; the node serves the pieces
        to its peers, each checked against its CID.
        """
        if len(data) <= DEFAULT_CHUNK_SIZE:
            return self._upload_blob(Cid.of(data, codec), data)
        manifest, pieces = compute_chunks(data)
        unique = dict(zip(manifest.chunks, pieces))  # a repeated chunk goes once
        with ThreadPoolExecutor(PARALLEL_PIECES) as pool:  # the pieces in parallel, the manifest last
            list(pool.map(self._upload_blob, unique, unique.values()))
        return self._upload_blob(manifest.cid, manifest.to_bytes())

    def _upload_blob(self, cid: Cid, data: bytes) -> Cid:
        _unless_busy(lambda: self._check(self._request("POST", f"/artifacts/{cid}", content=data)))
        return cid

    # --- job channel -------------------------------------------------------------------

    def post_job_message(self, job_id: str, payload: bytes) -> int:
        """Sign `payload` as a job message and relay it to the job's participants."""
        message = JobMessage.create(self._require_key(), self.chain_id, bytes.fromhex(job_id), payload)
        response = self._check(self._request("POST", f"/jobs/{job_id}/messages", content=message.to_bytes()))
        return _field(self._json(response, dict), "index", int)

    def job_messages(self, job_id: str, after: int = 0) -> tuple[list[tuple[PublicKey, bytes]], int]:
        """The job's messages from index `after` on, as (signer, payload), each checked; and
        the index to ask from next time."""
        body = self._get(f"/jobs/{job_id}/messages?after={after}", dict)
        out = []
        for item in _field(body, "messages", list):
            try:
                message = JobMessage.from_bytes(bytes.fromhex(_field(item, "data", str)), self.chain_id)
            except (BcaiError, ValueError):
                continue  # the node checked it; a bad one here means a bad node: skip it
            out.append((message.sender, message.payload))
        return out, _field(body, "next", int)

    def download(self, cid: Cid | str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """Fetch an artifact, every piece checked against its CID before it is used. The
        CID of a manifest (what `upload` returns for data over 4 MiB) gives the object it
        describes, reassembled from its chunks. An object over `max_bytes` (by its manifest,
        before any chunk is fetched), a chunk of another length than it implies, or a node
        streaming more than that (read no further) raises `InvalidManifest`: a CID from
        someone else (a worker's model) or a hostile node cannot make us fetch without bound."""
        cid = Cid.parse(cid) if isinstance(cid, str) else cid
        data = self._download_blob(cid, max_bytes)
        if cid.codec != CODEC_DAG_CBOR:
            return data
        try:
            manifest = Manifest.from_bytes(data)
        except InvalidManifest:
            return data  # an ordinary dag-cbor document (a job spec, a small model)
        if manifest.size > max_bytes:
            raise InvalidManifest(f"{cid} describes {manifest.size} bytes, more than the {max_bytes} allowed")
        lengths: dict[Cid, int] = {}  # each chunk's length by the manifest (a repeated chunk: the same one)
        for index, chunk in enumerate(manifest.chunks):
            expected = min(manifest.chunk_size, manifest.size - index * manifest.chunk_size)
            if lengths.setdefault(chunk, expected) != expected:
                raise InvalidManifest(f"{cid} lists chunk {chunk} with two lengths")
        with ThreadPoolExecutor(PARALLEL_PIECES) as pool:  # a node lacking them fetches them in parallel too
            fetched = dict(zip(lengths, pool.map(self._download_blob, lengths, lengths.values())))
        for index, chunk in enumerate(manifest.chunks):
            if len(fetched[chunk]) != lengths[chunk]:
                raise InvalidManifest(f"chunk {index} of {cid} is {len(fetched[chunk])} bytes, "
                                      f"its manifest says {lengths[chunk]}")
        return b"".join(fetched[chunk] for chunk in manifest.chunks)

    def _download_blob(self, cid: Cid, max_bytes: int) -> bytes:
        return _unless_busy(lambda: self._fetch_blob(cid, max_bytes))

    def _fetch_blob(self, cid: Cid, max_bytes: int) -> bytes:
        """The bytes the node serves for `cid`, read as they come and given up on past
        `max_bytes` (`InvalidManifest`): a hostile node cannot fill our memory."""
        data = bytearray()
        with self._http_errors(), self._http.stream("GET", f"/artifacts/{cid}") as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            for piece in response.iter_bytes():
                data += piece
                if len(data) > max_bytes:
                    raise InvalidManifest(f"the node sends more than the {max_bytes} bytes expected for {cid}")
        if not cid.matches(bytes(data)):
            raise InvalidCid(f"node returned bytes that do not match {cid}")
        return bytes(data)
