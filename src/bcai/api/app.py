"""The REST + websocket API every node serves (FastAPI). OpenAPI at `/openapi.json`.

Every rejection is a 4xx with a machine-readable body `{"error": {"code", "message"}}`,
the code being the `BcaiError.code` of what went wrong. Request bodies are capped
(`max_body_bytes`, checked on the declared length and on the bytes actually read) and
each client IP is rate-limited (token bucket: one token per request, and one per tx of a
`POST /txs/batch`, so batching does not bypass the limit). No endpoint takes a private key.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import time
from typing import Any, Callable

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from bcai.api.service import NodeService
from bcai.crypto import Address, Cid
from bcai.errors import BcaiError, InvalidCid, InvalidKey, NodeBusy
from bcai.node.config import ApiConfig


MAX_EVENT_SOCKETS = 256  # websocket /events clients served at once
DEFAULT_PAGE = 100  # entries of a GET /jobs or /validators page unless `limit` says otherwise
MAX_PAGE = 1_000  # the most `limit` may ask for
# Query parameters whose wrong shape or range is a 400 with their own code (others: 422).
_QUERY_CODES = {"limit": "bad_limit", "cursor": "bad_cursor"}


class ApiError(BcaiError):
    """Raised when an API request itself is unacceptable (size, rate, format, missing)."""

    http_status = 400

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = status


class ErrorDetail(BaseModel):
    code: str  # the `BcaiError.code` of what went wrong, e.g. "bad_nonce", "not_found"
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


_ERROR_MEANINGS = {
    400: "Malformed input (bad hex, bad hash length, bad address, undecodable or invalid transaction)",
    402: "The sender cannot pay the amount and fee",
    403: "The signer may not do this",
    404: "Not found (or an unknown entity named by a transaction)",
    408: "The request body did not arrive within the node's time for it (`body_timeout_s`)",
    409: "Conflicts with the chain or the mempool (nonce, duplicate, wrong state, mempool full)",
    413: "The request body is over the node's limit (or the transaction over the ledger's)",
    415: "The body is not declared as JSON (`Content-Type: application/json`)",
    422: "The request does not match this operation's parameters or body schema",
    429: "Over this client's request rate limit (or, for uploads, its upload allowance)",
    507: "The node's quota for uploaded content is full of what it must keep; retry later",
    503: "The node declines for now (its peers' pace for artifact lookups, or its room for request bodies, "
         "is used up); retry shortly",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: its own error statuses plus 408, 413 and 429, which
    the limits middleware may answer on any route; every one has the `ErrorBody` shape."""
    return {status: {"model": ErrorBody, "description": _ERROR_MEANINGS[status]}
            for status in sorted({*statuses, 408, 413, 429})}


# The error answers each kind of route declares (shared, so a new route picks the right one).
ERRORS = error_responses()  # no parameters: only the middleware's refusals
LOOKUP_ERRORS = error_responses(400, 404, 422)  # a path/query parameter names something
# Routes that read a body may also answer 503 node_busy (`max_body_bytes_in_flight`).
TX_ERRORS = error_responses(400, 402, 403, 404, 409, 413, 415, 422, 503)  # a signed tx is checked against the chain
UPLOAD_ERRORS = error_responses(400, 422, 503)  # raw bytes checked against a CID or a job's rules
STORE_ERRORS = error_responses(503, 507)  # content stored for a client, within the node's upload quota
_NEXT_HEADERS = {
    "X-Next-Cursor": {"description": "The `cursor` of the next page; absent on the last page",
                      "schema": {"type": "string"}},
    "Link": {"description": 'RFC 8288 `<url of the next page>; rel="next"`; absent on the last page',
             "schema": {"type": "string"}},
}
PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "One page, in key order (a list, as before paging)", "headers": _NEXT_HEADERS},
    **error_responses(400, 422)}  # 422: FastAPI lists it for any route with parameters
LimitQuery = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description=f"Entries on the page, 1 to {MAX_PAGE}")


class TxIn(BaseModel):
    tx: str  # hex of the signed transaction bytes


class TxAccepted(BaseModel):
    hash: str


class TxBatchIn(BaseModel):
    txs: list[str]  # hex of each signed transaction, at most `max_batch_txs`


class TxResult(BaseModel):
    hash: str | None  # set when the tx entered the mempool
    error: ErrorDetail | None  # else why it was refused


class TxBatchResults(BaseModel):
    results: list[TxResult]  # one per submitted tx, in order


class JobMessageAccepted(BaseModel):
    index: int


class ArtifactStored(BaseModel):
    cid: str


class UploadQuotaExceeded(ApiError):
    """Raised when a client's new upload bytes in the window would pass `upload_client_bytes`."""

    def __init__(self, config: ApiConfig, size: int, wait_s: float) -> None:
        when = "never: larger than the whole allowance" if wait_s == float("inf") else f"in {math.ceil(wait_s)} s"
        super().__init__("upload_quota", f"{size} more bytes would pass this client's upload allowance of "
                         f"{config.upload_client_bytes} bytes per {config.upload_window_s} s (room {when})", 429)
        self.retry_after_s = None if wait_s == float("inf") else math.ceil(wait_s)


class _BodyRefused(BaseException):
    # BaseException: FastAPI turns any Exception raised while reading a body into a 400.
    def __init__(self, error: BcaiError) -> None:
        super().__init__(str(error))
        self.error = error


MAX_RATE_BUCKETS = 10_000


def compute_client_key(host: str) -> str:
    """The rate-limit bucket of a client address. An IPv4 address is its own (also when
    written IPv4-mapped, `::ffff:a.b.c.d`); an IPv6 address counts by its /64, the block a
    single host is handed, so one client cannot take a fresh bucket per address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP address (a test client, a unix socket)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    """Per-client token buckets (`compute_client_key`): `rate_per_s` tokens a second, at
    most `capacity` held (default: one second's worth)."""

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic,
                 capacity: float | None = None) -> None:
        self.rate = float(rate_per_s)
        self.capacity = self.rate if capacity is None else float(capacity)
        self.clock = clock
        self.buckets: dict[str, list[float]] = {}  # client key -> [tokens, last refill]

    def _refill(self, client: str) -> list[float]:
        now = self.clock()
        key = compute_client_key(client)
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_RATE_BUCKETS:  # bound memory under a spray of source addresses
                self._forget_full(now)
            bucket = self.buckets[key] = [self.capacity, now]
        bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        return bucket

    def take(self, client: str, count: int = 1) -> int:
        """Take up to `count` tokens from `client`'s bucket; return how many it had."""
        bucket = self._refill(client)
        granted = min(count, int(bucket[0]))
        bucket[0] -= granted
        return granted

    def take_all(self, client: str, count: int, keep: bool = False) -> float:
        """Take `count` tokens or none: 0.0 when taken (`keep`: when there, left in the
        bucket), else the seconds until the bucket would hold them (inf for more than it
        ever holds)."""
        bucket = self._refill(client)
        if count <= bucket[0]:
            bucket[0] -= 0 if keep else count
            return 0.0
        return float("inf") if count > self.capacity or not self.rate else (count - bucket[0]) / self.rate

    def give_back(self, client: str, count: int) -> None:
        """Return tokens taken for something that did not happen."""
        bucket = self._refill(client)
        bucket[0] = min(self.capacity, bucket[0] + count)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets idle long enough to be full again, the same as a new one. Only
        when none is is everything dropped: dropping used buckets lets a spray of
        addresses refill everybody's, the sprayer's own included."""
        refill_s = self.capacity / self.rate if self.rate else float("inf")
        self.buckets = {key: bucket for key, bucket in self.buckets.items() if now - bucket[1] < refill_s}
        if len(self.buckets) >= MAX_RATE_BUCKETS:
            self.buckets.clear()


class _Limits:
    """ASGI middleware: a token per request from the client IP's bucket, and hard caps on a
    request body's bytes and time.

    The size cap is checked on the declared Content-Length and again on the bytes actually
    received, so a chunked or lying client cannot stream past it. The whole body must have
    arrived `body_timeout_s` after the headers, so a client trickling a large upload a byte
    at a time cannot hold the request (and what it buffered) for ever. After either refusal
    the server reads and drops the rest of the body for at most `header_timeout_s`
    (`bcai.api.server`), then closes: closing at once would make the client's kernel reset
    the connection, often before it read the answer. The bodies of all requests being
    served together hold at most `max_body_bytes_in_flight` (503 `node_busy` past it), so
    many clients uploading at once cannot fill the node's memory.
    """

    def __init__(self, app: Any, config: ApiConfig, limiter: RateLimiter) -> None:
        self.app = app
        self.max_body_bytes = config.max_body_bytes
        self.body_timeout_s = config.body_timeout_s
        self.max_in_flight = config.max_body_bytes_in_flight
        self.in_flight = 0  # body bytes received by requests not yet answered, all clients together
        self.limiter = limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        if scope["type"] == "websocket":  # a handshake costs a token like a request
            if self.limiter.take(client[0]):
                await self.app(scope, receive, send)
            else:  # closing before the accept: the client gets an HTTP 403
                await send({"type": "websocket.close", "code": 1008, "reason": "rate limited"})
            return
        if not self.limiter.take(client[0]):
            await _error(ApiError("rate_limited", f"more than {self.limiter.rate:g} requests/s", 429))(
                scope, receive, send)
            return
        too_large = ApiError("body_too_large", f"body over {self.max_body_bytes} bytes", 413)
        busy = NodeBusy(f"the node holds {self.max_in_flight} bytes of request bodies at once; send again shortly")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _error(too_large)(scope, receive, send)
            return
        if declared is not None and self.in_flight + int(declared) > self.max_in_flight:
            await _error(busy)(scope, receive, send)
            return
        received = 0
        body_done = False
        started = False
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # after the body only a disconnect comes: no deadline
                return await receive()  # type: ignore[no-any-return]
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                raise _BodyRefused(ApiError("body_timeout", f"the body did not arrive within {self.body_timeout_s:g} s "
                                            "of the headers", 408)) from None
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                received += size
                self.in_flight += size
                if received > self.max_body_bytes:
                    raise _BodyRefused(too_large)
                if self.in_flight > self.max_in_flight:
                    raise _BodyRefused(busy)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message  # type: ignore[no-any-return]

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyRefused as refused:
            if not started:
                await _error(refused.error)(scope, receive, send)
        finally:
            self.in_flight -= received


def _error(exc: BcaiError) -> JSONResponse:
    headers = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers)


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _hex(value: str, what: str, code: str = "bad_hex") -> bytes:
    # strictly pairs of hex digits: bytes.fromhex alone also takes spaces between them
    if not _HEX.fullmatch(value):
        raise ApiError(code, f"{what} must be hex", 400)
    return bytes.fromhex(value)


DOWNLOAD_PIECE_BYTES = 256 << 10  # an artifact answer goes out in pieces of this size


class _PieceResponse(Response):
    """Bytes sent in pieces, each within `send_timeout_s` (a client that stops reading is
    cut off: the server closes the connection), calling `done` once over either way."""

    media_type = "application/octet-stream"

    def __init__(self, data: bytes, done: Callable[[], None], send_timeout_s: float) -> None:
        super().__init__(content=data)
        self.done = done
        self.send_timeout_s = send_timeout_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            view = memoryview(self.body)
            for start in range(0, len(view), DOWNLOAD_PIECE_BYTES):
                piece = {"type": "http.response.body", "body": bytes(view[start:start + DOWNLOAD_PIECE_BYTES]),
                         "more_body": True}
                await asyncio.wait_for(send(piece), self.send_timeout_s)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            return  # the answer left incomplete: the server closes the connection
        finally:
            self.done()


def _client_host(request: Request) -> str:
    return request.client.host if request.client else "?"


def _json_body(request: Request) -> None:
    """A route's dependency: its body is JSON, declared so. Anything else (form data, raw tx
    bytes, text) is a 415 that says what to send instead of a schema error about a dict."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise ApiError("unsupported_media_type", f"the body must be JSON (Content-Type: application/json), "
                       f"not {media_type or 'undeclared'}", 415)


def _page(request: Request, items: list[dict[str, Any]], next_cursor: str | None) -> JSONResponse:
    """A page of a listing: the entries as the body (a JSON list), and where more follow
    the next page's cursor in `X-Next-Cursor` and its URL in `Link` (RFC 8288)."""
    headers = {}
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        headers = {"X-Next-Cursor": next_cursor, "Link": f'<{url.path}?{url.query}>; rel="next"'}
    return JSONResponse(items, headers=headers)


def _found(view: Any, what: str) -> Any:
    if view is None:
        raise ApiError("not_found", f"{what} not found", 404)
    return view


def create_app(service: NodeService, config: ApiConfig = ApiConfig()) -> FastAPI:
    app = FastAPI(title="bcai node API", version="1", description="Read the chain, submit signed transactions, "
                  "move artifacts by CID. No endpoint takes a private key.")

    @app.exception_handler(BcaiError)
    async def _bcai_error(_: Request, exc: BcaiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        for e in exc.errors():
            loc = tuple(e.get("loc", ()))
            if len(loc) == 2 and loc[0] == "query" and loc[1] in _QUERY_CODES:
                return _error(ApiError(_QUERY_CODES[loc[1]], f"{loc[1]}: {e.get('msg', '')}", 400))
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return _error(ApiError("invalid_request", where or "invalid request", 422))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": JSON that is not UTF-8
            return _error(ApiError("invalid_request", f"body: {exc.detail}", 422))  # as undecodable JSON is
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(ApiError(codes.get(exc.status_code, "http_error"), str(exc.detail), exc.status_code))

    limiter = RateLimiter(config.rate_limit_per_s)
    app.add_middleware(_Limits, config=config, limiter=limiter)

    @app.get("/status", responses=ERRORS)
    def status() -> dict[str, Any]:
        return service.get_status()

    @app.get("/params", responses=ERRORS)
    def params() -> dict[str, Any]:
        return service.get_params()

    @app.get("/blocks/latest", responses=error_responses(404))
    def latest_block() -> dict[str, Any]:
        return _found(service.get_latest_block(), "block")

    @app.get("/blocks/{height}", responses=LOOKUP_ERRORS)
    def block(height: int) -> dict[str, Any]:
        if not 1 <= height < 2**63:
            raise ApiError("bad_height", "heights are integers from 1 to 2**63-1", 400)
        return _found(service.get_block(height), f"block {height}")

    @app.get("/txs/{tx_hash}", responses=LOOKUP_ERRORS)
    def tx(tx_hash: str) -> dict[str, Any]:
        raw = _hex(tx_hash, "tx hash")
        if len(raw) != 32:
            raise ApiError("bad_hash", "a tx hash is 32 bytes", 400)
        return _found(service.get_tx(raw), f"tx {tx_hash}")

    @app.post("/txs", status_code=202, response_model=TxAccepted, responses=TX_ERRORS, dependencies=[Depends(_json_body)])
    async def submit(body: TxIn) -> TxAccepted:
        tx_hash = await service.submit_tx(_hex(body.tx, "tx"))
        return TxAccepted(hash=tx_hash.hex())

    @app.post("/txs/batch", response_model=TxBatchResults, responses=error_responses(400, 415, 422, 503),
              dependencies=[Depends(_json_body)])
    async def submit_batch(body: TxBatchIn, request: Request) -> Response:
        """Submit up to `max_batch_txs` signed txs in one request; the answer holds one result
        per tx, in order: `{"hash", "error": null}` once it entered the mempool, else
        `{"hash": null, "error": {"code", "message"}}`. A bad tx never refuses the others;
        each tx takes a rate-limit token, and the txs past the client's tokens get
        `rate_limited`. Txs of one sender go in nonce order."""
        if len(body.txs) > config.max_batch_txs:
            raise ApiError("batch_too_large", f"a batch holds at most {config.max_batch_txs} txs", 413)
        allowed = 1 + limiter.take(_client_host(request), max(0, len(body.txs) - 1))  # the request's own token pays the first
        results: list[bytes | BcaiError] = [ApiError("rate_limited", "the client's rate limit is used up", 429)
                                            for _ in body.txs]
        good: list[int] = []
        raws: list[bytes] = []
        for index, text in enumerate(body.txs[:allowed]):
            try:
                raws.append(_hex(text, "tx"))
                good.append(index)
            except ApiError as exc:
                results[index] = exc
        for index, outcome in zip(good, await service.submit_txs(raws)):
            results[index] = outcome
        return JSONResponse({"results": [
            {"hash": r.hex(), "error": None} if isinstance(r, bytes) else {"hash": None, "error": r.to_dict()}
            for r in results]})

    @app.get("/accounts/{address}", responses=LOOKUP_ERRORS)
    def account(address: str) -> dict[str, Any]:
        return service.get_account(address)

    @app.get("/validators", response_model=list[dict[str, Any]], responses=PAGE_RESPONSES)
    def validators(request: Request, limit: int = LimitQuery,
                   cursor: str | None = Query(None, description="`X-Next-Cursor` of the previous page: "
                                              "the address the page starts after")) -> Response:
        """Validators in address order, each with `active` (in the set of the next height);
        `limit` a page, the next page's cursor in `X-Next-Cursor` and `Link`."""
        try:
            after = None if cursor is None else Address.parse(cursor)
        except InvalidKey:
            raise ApiError("bad_cursor", "a validators cursor is an address (bcai + 40 hex digits)", 400) from None
        page, last = service.get_validators(after, limit)
        return _page(request, page, None if last is None else str(last))

    @app.get("/jobs", response_model=list[dict[str, Any]], responses=PAGE_RESPONSES)
    def jobs(request: Request, limit: int = LimitQuery,
             cursor: str | None = Query(None, description="`X-Next-Cursor` of the previous page: "
                                        "the job id (hex) the page starts after")) -> Response:
        """Jobs in job id order; `limit` a page, the next page's cursor in `X-Next-Cursor`
        and `Link`."""
        after = None if cursor is None else _hex(cursor, "cursor", "bad_cursor")
        if after is not None and len(after) != 32:
            raise ApiError("bad_cursor", "a jobs cursor is a job id (64 hex digits)", 400)
        page, last = service.get_jobs(after, limit)
        return _page(request, page, None if last is None else last.hex())

    @app.get("/jobs/{job_id}", responses=LOOKUP_ERRORS)
    def job(job_id: str) -> dict[str, Any]:
        return _found(service.get_job(_hex(job_id, "job id")), f"job {job_id}")

    @app.post("/jobs/{job_id}/messages", status_code=202, response_model=JobMessageAccepted, responses=UPLOAD_ERRORS)
    async def post_job_message(job_id: str, request: Request) -> JobMessageAccepted:
        """Relay a signed job message (raw bytes of a `bcai.node.job_relay.JobMessage`)
        to the job's participants; only the job's client, workers and evaluators may post."""
        job = _hex(job_id, "job id")
        index = await service.post_job_message(job, await request.body())
        return JobMessageAccepted(index=index)

    @app.get("/jobs/{job_id}/messages", responses=LOOKUP_ERRORS)
    async def get_job_messages(job_id: str, after: int = 0) -> dict[str, Any]:
        """The job's messages this node holds, from index `after` on (hex bytes)."""
        if after < 0:
            raise ApiError("bad_index", "after must be >= 0", 400)
        return _found(await service.get_job_messages(_hex(job_id, "job id"), after), f"job {job_id}")

    @app.get("/nodes", responses=ERRORS)
    def nodes() -> list[dict[str, Any]]:
        return service.get_nodes()

    downloads = asyncio.Semaphore(config.max_downloads)

    @app.get("/artifacts/{cid}", response_class=Response, responses=error_responses(400, 404, 422, 503))
    async def get_artifact(cid: str) -> Response:
        """The artifact's bytes, from this node or fetched from its peers by CID (503
        `node_busy` when it would have to ask its peers faster than they allow). At most
        `max_downloads` answers are held at once (the others wait their turn), each sent in
        pieces; a client that reads nothing for `send_timeout_s` is cut off."""
        try:
            Cid.parse(cid)
        except InvalidCid as exc:
            raise ApiError("invalid_cid", str(exc), 400) from None
        await downloads.acquire()
        try:
            data = _found(await service.get_artifact(cid), f"artifact {cid}")
        except BaseException:
            downloads.release()
            raise
        return _PieceResponse(data, downloads.release, config.send_timeout_s)

    uploads = RateLimiter(config.upload_client_bytes / config.upload_window_s, capacity=config.upload_client_bytes)

    def compute_upload_cost(cid: Cid, size: int) -> int:
        """What an upload of `size` bytes under `cid` costs the client's allowance: all of it
        for an object the node lacks; for one it holds, the renewal of its grace (0 if it
        is not an API upload), so re-sending uploads to keep them is never free."""
        return service.get_renewal_cost(cid) if service.has_artifact(cid) else size

    async def store_upload(request: Request, cid: Cid, data: bytes) -> ArtifactStored:
        """Store checked bytes for a client (or renew the grace of an upload the node holds),
        charged to the client's upload allowance; new bytes also to the node's quota."""
        client = _client_host(request)
        cost = compute_upload_cost(cid, len(data))
        wait_s = uploads.take_all(client, cost) if cost else 0.0
        if wait_s:
            raise UploadQuotaExceeded(config, cost, wait_s)
        try:
            if not service.renew_artifact(cid):
                await service.put_artifact(cid, data)
        except BaseException:
            uploads.give_back(client, cost)
            raise
        return ArtifactStored(cid=str(cid))

    @app.post("/artifacts", status_code=201, response_model=ArtifactStored, responses=STORE_ERRORS)
    async def put_artifact(request: Request) -> ArtifactStored:
        """Store raw bytes under their sha2-256 CID (`POST /artifacts/{cid}` for another
        codec or hash, checked against the CID)."""
        data = await request.body()
        return await store_upload(request, await asyncio.to_thread(Cid.of, data), data)

    @app.post("/artifacts/{cid}", status_code=201, response_model=ArtifactStored,
              responses={**UPLOAD_ERRORS, **STORE_ERRORS})
    async def put_artifact_checked(cid: str, request: Request) -> ArtifactStored:
        """Store bytes under `cid` (raw or dag-cbor, sha2-256 or BLAKE3), checked against it.
        A declared length past the client's upload allowance is refused before the body is
        read (unless the node holds `cid` already)."""
        try:
            parsed = Cid.parse(cid)
        except InvalidCid as exc:
            raise ApiError("invalid_cid", str(exc), 400) from None
        declared = request.headers.get("content-length", "")
        cost = compute_upload_cost(parsed, int(declared)) if declared.isdigit() else 0
        if cost:  # checked only: charged (and a grace renewed) once the bytes are checked
            wait_s = uploads.take_all(_client_host(request), cost, keep=True)
            if wait_s:
                raise UploadQuotaExceeded(config, cost, wait_s)
        data = await request.body()
        try:
            await asyncio.to_thread(parsed.check, data)
        except InvalidCid as exc:
            raise ApiError("invalid_cid", str(exc), 400) from None
        return await store_upload(request, parsed, data)

    @app.get("/metrics", response_class=Response, responses=ERRORS)
    def metrics() -> Response:
        return Response(content=service.render_metrics(), media_type="text/plain; version=0.0.4")

    event_sockets = 0

    @app.websocket("/events")
    async def events(socket: WebSocket) -> None:
        nonlocal event_sockets
        if event_sockets >= MAX_EVENT_SOCKETS:  # each holds a queue of up to 1,000 events
            await socket.close(code=1013, reason=f"at most {MAX_EVENT_SOCKETS} event clients")
            return
        await socket.accept()
        event_sockets += 1
        queue = service.subscribe()

        async def pump() -> None:
            while True:
                await socket.send_json(await queue.get())

        async def watch() -> None:  # what the client sends is read and dropped; ends when it leaves
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(pump()), asyncio.create_task(watch())]
        try:  # whichever ends first (a send failed, the client left) ends the other
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            service.unsubscribe(queue)
            event_sockets -= 1

    return app
