"""Schemathesis against the node's own `/openapi.json`: generated requests for every
operation, sent to a real in-process node's FastAPI app (ASGI, no network); no response
may be a server error (5xx), every status must be one the operation declares, and each
answer must have the content type and body schema the schema gives it.

The node runs in its own event loop on a background thread (it keeps producing blocks);
each generated request is sent through httpx's ASGI transport *on that loop*, so the app
and the node only ever run in the node's loop, as in `bcai node run`.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Awaitable, Iterator, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bcai.api import create_app
from bcai.node import Node, init_home
from bcai.node.config import ApiConfig, P2PConfig

from api_support import get_documented_error_codes

T = TypeVar("T")
# Every route declares its 4xx answers (`bcai.api.app.error_responses`), so a status the
# schema does not list for that operation is a failure too.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class NodeHarness:
    """A started node and an ASGI client on the node's own loop (on a thread)."""

    def __init__(self, home: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node, self.app, self.client = self.run(self._start(home))
        self.statuses: dict[int, int] = {}  # status code -> responses seen
        self.error_codes: set[tuple[int, str]] = set()  # (status, machine-readable code) seen

    def run(self, coroutine: Awaitable[T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    async def _start(self, home: Path) -> tuple[Node, Any, httpx.AsyncClient]:
        node = Node(home)
        await node.start()
        app = create_app(node, ApiConfig(rate_limit_per_s=1_000_000))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")
        while node.app.state.height < 2:
            await asyncio.sleep(0.02)
        return node, app, client

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.node.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        kwargs = dict(kwargs)
        data = kwargs.pop("data", None)
        if isinstance(data, (bytes, str)):
            kwargs["content"] = data
        elif data is not None:
            kwargs["data"] = data
        kwargs.pop("cookies", None)
        response = self.run(self.client.request(**kwargs))
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 400:
            self.error_codes.add((response.status_code, response.json()["error"]["code"]))
        return response


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeHarness]:
    home = tmp_path_factory.mktemp("schemathesis") / "node"
    init_home(home, "st-node", ("validator",), "bcai-sttest", p2p=P2PConfig(port=0))
    running = NodeHarness(home)
    yield running
    running.close()


def get_operations(harness: NodeHarness) -> list[Any]:
    schema = schemathesis.openapi.from_dict(harness.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # every documented route is exercised
    return operations


def run_operation(harness: NodeHarness, operation: Any, examples: int) -> None:
    """Valid requests and, where the schema allows breaking it, invalid ones (hostile input)."""
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    if operation.path_parameters or operation.query or operation.body:
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = harness.send(case.as_transport_kwargs(base_url="http://node"))
        case.validate_response(response, checks=CHECKS)

    check()


def test_every_operation_declares_its_error_answers(harness: NodeHarness) -> None:
    schema = harness.app.openapi()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            errors = {code for code in responses if code.startswith("4")}
            assert {"413", "429"} <= errors, (method, path, errors)  # the limits apply everywhere
            if operation.get("parameters") or operation.get("requestBody", {}).get("required"):
                assert "422" in errors or "400" in errors, (method, path, errors)
            for code in errors:
                assert responses[code]["content"]["application/json"]["schema"] == error_ref, (method, path, code)
    assert "HTTPValidationError" not in schema.get("components", {}).get("schemas", {})


def test_every_operation_conforms_and_never_fails_with_5xx(harness: NodeHarness) -> None:
    for operation in get_operations(harness):
        run_operation(harness, operation, examples=15)
    # both accepted and refused requests reached the app (the generator is not one-sided)
    assert any(200 <= code < 300 for code in harness.statuses), harness.statuses
    assert any(400 <= code < 500 for code in harness.statuses), harness.statuses
    documented = get_documented_error_codes()
    for status, code in harness.error_codes:
        assert code in documented.get(status, set()), f"{status} {code} is not in docs/api.md's error table"


@pytest.mark.slow
def test_every_operation_conforms_many_examples(harness: NodeHarness) -> None:
    for operation in get_operations(harness):
        run_operation(harness, operation, examples=150)
