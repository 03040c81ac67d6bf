"""A running node's `/metrics` and `/openapi.json` read by the third-party tools that
consume them (Prometheus' own parser, `prometheus_client.parser`, and
`openapi-spec-validator`), and its error answers against the codes docs/api.md lists."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from bcai.errors import InvalidTransaction, MempoolError
from bcai.node.telemetry import NodeMetrics

from api_support import get_documented_error_codes, serving

METRIC_NAME = re.compile(r"bcai_[a-z0-9_]+")  # the Prometheus name rule, in our lower-case style
# Prometheus names carry base units (seconds, bytes), never scaled ones.
SCALED_UNITS = re.compile(r"_(ms|us|ns|milliseconds|microseconds|minutes|hours|days|kb|mb|gb|kib|mib|gib|percent)(_|$)")


def test_metrics_parse_and_follow_the_naming_rules(node_home: Path) -> None:
    async def scenario() -> tuple[str, str]:
        async with serving(node_home, min_height=2) as (_, client):
            response = await client.get("/metrics")
            assert response.status_code == 200
            return response.headers["content-type"], response.text

    content_type, text = asyncio.run(scenario())
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"  # the text format's media type
    families = {family.name: family for family in text_string_to_metric_families(text)}
    kinds = {name: family.type for name, family in families.items()}
    for name in ("bcai_height", "bcai_peers", "bcai_mempool_txs", "bcai_mempool_bytes"):
        assert kinds[name] == "gauge"
    for name in ("bcai_blocks_committed", "bcai_txs_committed", "bcai_txs_received", "bcai_p2p_events"):
        assert kinds[name] == "counter"
    assert kinds["bcai_block_interval_seconds"] == "histogram"
    for name, family in families.items():
        assert METRIC_NAME.fullmatch(name) and not SCALED_UNITS.search(name), name
        assert family.documentation, f"{name} has no HELP text"
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name in (f"{name}_total", f"{name}_created"), sample.name
            else:
                assert not sample.name.endswith("_total"), sample.name  # only counters end in _total
    committed = {s.name: s.value for s in families["bcai_blocks_committed"].samples}
    assert committed["bcai_blocks_committed_total"] >= 2
    buckets = [s for s in families["bcai_block_interval_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    # every family announced once, HELP before TYPE before its samples
    comments = [line.split()[1:3] for line in text.splitlines() if line.startswith("#")]
    assert all(count == 1 for count in Counter(tuple(c) for c in comments).values())
    for index, line in enumerate(text.splitlines()):
        if line.startswith("# TYPE "):
            assert text.splitlines()[index - 1].startswith(f"# HELP {line.split()[2]} ")


def test_metrics_label_values_are_escaped() -> None:
    hostile = 'say "hi"\\n\nnext'  # a quote, a backslash and a newline
    metrics = NodeMetrics()
    metrics.watch_p2p({hostile: 3, "banned": 1})
    text = metrics.render().decode()
    assert "\nnext" not in text  # the newline is escaped, not written out
    samples = {s.labels["event"]: s.value for f in text_string_to_metric_families(text)
               if f.name == "bcai_p2p_events" for s in f.samples}
    assert samples == {hostile: 3.0, "banned": 1.0}


def test_openapi_document_is_valid(node_home: Path) -> None:
    async def scenario() -> dict:
        async with serving(node_home) as (_, client):
            return (await client.get("/openapi.json")).json()

    document = asyncio.run(scenario())
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises OpenAPIValidationError on any violation of the 3.1 schema


JOB = "00" * 32
# (method, path, request arguments, status, code): one request for each refusal the routes make
REFUSALS = [
    ("GET", "/nope", {}, 404, "not_found"),
    ("DELETE", "/txs", {}, 405, "method_not_allowed"),
    ("POST", "/txs", {"content": "x", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ("POST", "/txs", {"content": "{bad", "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
    ("POST", "/txs/batch", {"content": b'{"txs": ["\xff"]}', "headers": {"content-type": "application/json"}},
     422, "invalid_request"),  # not UTF-8: FastAPI's own 400 "error parsing the body", once code http_error
    ("POST", "/txs", {"json": {"tx": "zz"}}, 400, "bad_hex"),
    ("POST", "/txs", {"json": {"tx": "00"}}, 400, "tx_malformed"),
    ("POST", "/txs/batch", {"json": {"txs": ["00"] * 1001}}, 413, "batch_too_large"),
    ("GET", "/blocks/0", {}, 400, "bad_height"),
    ("GET", "/blocks/abc", {}, 422, "invalid_request"),
    ("GET", "/blocks/99999", {}, 404, "not_found"),
    ("GET", "/txs/00", {}, 400, "bad_hash"),
    ("GET", "/jobs?limit=0", {}, 400, "bad_limit"),
    ("GET", "/validators?cursor=zz", {}, 400, "bad_cursor"),
    ("GET", "/accounts/bcaizz", {}, 400, "invalid_key"),
    ("GET", f"/jobs/{JOB}/messages?after=-1", {}, 400, "bad_index"),
    ("POST", f"/jobs/{JOB}/messages", {"content": b"xx"}, 400, "invalid_job_message"),
    ("GET", "/artifacts/xyz", {}, 400, "invalid_cid"),
    ("POST", "/artifacts/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", {"content": b"x"},
     400, "invalid_cid"),
]


def test_each_refusal_answers_a_documented_code(node_home: Path) -> None:
    async def scenario() -> list[tuple[int, str]]:
        async with serving(node_home) as (_, client):
            answers = []
            for method, path, kwargs, _, _ in REFUSALS:
                response = await client.request(method, path, **kwargs)
                answers.append((response.status_code, response.json()["error"]["code"]))
            return answers

    documented = get_documented_error_codes()
    for (method, path, _, status, code), answer in zip(REFUSALS, asyncio.run(scenario())):
        assert answer == (status, code), (method, path)
        assert code in documented[status], f"docs/api.md lists no {code} under {status}"


def test_every_code_a_transaction_can_get_is_documented() -> None:
    """`POST /txs` answers each ledger or mempool refusal with its class's code and status."""
    documented = get_documented_error_codes()
    todo, leaves = [InvalidTransaction, MempoolError], []
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__subclasses__():
            leaves.append(cls)
    assert len(leaves) >= 20
    for cls in leaves:
        assert cls.code in documented.get(cls.http_status, set()), f"{cls.__name__}: {cls.http_status} {cls.code}"
