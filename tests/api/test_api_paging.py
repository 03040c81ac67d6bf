"""Paging of `GET /jobs` and `GET /validators`: key order, `limit` up to a hard maximum,
the next page's cursor in `X-Next-Cursor` and `Link`, bad parameters a 400 with their own
code; the SDK's iterators and `bcai job list` walk every page.

The API runs over the real `NodeReads` of a ledger state with many jobs and validators
(no node: nothing here needs consensus)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bcai.api import create_app
from bcai.api.app import MAX_PAGE
from bcai.cli.app import app as cli_app
from bcai.crypto import Cid, PrivateKey
from bcai.errors import ClientError
from bcai.ledger import Genesis, Job, compute_genesis_state
from bcai.node.service import NodeReads
from bcai.sdk import Client

VALIDATORS = sorted((PrivateKey.from_label(f"pager-val{i}") for i in range(7)), key=lambda k: k.address.raw)


def make_job(index: int) -> tuple[bytes, Job]:
    job_id = bytes([index]) * 32
    return job_id, Job(VALIDATORS[0].address, Cid.of(b"spec %d" % index), 10, 10, 1, 6000, 100, 1, 1, 5, 1)


class PagedReads(NodeReads):
    def __init__(self, jobs: int) -> None:
        state = compute_genesis_state(Genesis("bcai-pager", validators=tuple((k.public_key, 100) for k in VALIDATORS)))
        for index in range(jobs):
            state.set_job(*make_job(index * 3 + 1))  # ids 01.., 04.., 07..: room for ids between them
        self.app = SimpleNamespace(state=state)  # type: ignore[assignment]


@pytest.fixture
def reads() -> PagedReads:
    return PagedReads(jobs=25)


@pytest.fixture
def api(reads: PagedReads) -> TestClient:
    return TestClient(create_app(reads), base_url="http://node")  # type: ignore[arg-type]


def walk(api: TestClient, start: str, limit: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Every entry from the page at `start` on (with `limit=`), following `Link` from page
    to page; and the size of each page."""
    entries: list[dict[str, Any]] = []
    sizes = []
    url: str | None = f"{start}{'&' if '?' in start else '?'}limit={limit}"
    while url is not None:
        response = api.get(url)
        assert response.status_code == 200, response.text
        entries += response.json()
        sizes.append(len(response.json()))
        link = response.headers.get("link")
        cursor = response.headers.get("x-next-cursor")
        assert (link is None) == (cursor is None)
        if link is not None:
            assert link.endswith('>; rel="next"') and f"cursor={cursor}" in link and f"limit={limit}" in link
            url = link[1:link.index(">")]
        else:
            url = None
    return entries, sizes


def test_jobs_pages_cover_every_job_once_in_id_order(api: TestClient) -> None:
    jobs, sizes = walk(api, "/jobs", 10)
    assert sizes == [10, 10, 5]
    ids = [job["job_id"] for job in jobs]
    assert ids == sorted(ids) == [(bytes([i * 3 + 1]) * 32).hex() for i in range(25)]
    one_page = api.get("/jobs?limit=25")
    assert one_page.json() == jobs and "x-next-cursor" not in one_page.headers  # exactly the end: no cursor
    assert api.get("/jobs").json() == jobs  # no parameters: the default page (100) holds them all


def test_jobs_cursor_is_stable_when_jobs_are_added(api: TestClient, reads: PagedReads) -> None:
    first = api.get("/jobs?limit=5")
    cursor = first.headers["x-next-cursor"]
    assert cursor == first.json()[-1]["job_id"]
    reads.app.state.set_job(*make_job(2))  # a new job sorting before the cursor: not seen again later
    reads.app.state.set_job(*make_job(3 * 5 + 2))  # one sorting after it: on a later page
    rest, _ = walk(api, f"/jobs?cursor={cursor}", 5)
    ids = [job["job_id"] for job in first.json() + rest]
    assert len(ids) == len(set(ids)) == 26 and (bytes([17]) * 32).hex() in ids and (bytes([2]) * 32).hex() not in ids


def test_jobs_well_formed_cursor_of_no_job_starts_after_it(api: TestClient) -> None:
    page = api.get(f"/jobs?cursor={(bytes([5]) * 32).hex()}&limit=2").json()
    assert [job["job_id"] for job in page] == [(bytes([7]) * 32).hex(), (bytes([10]) * 32).hex()]
    assert api.get(f"/jobs?cursor={'ff' * 32}").json() == []


def test_validators_pages_with_active_flag(api: TestClient) -> None:
    validators, sizes = walk(api, "/validators", 3)
    assert sizes == [3, 3, 1]
    assert [v["address"] for v in validators] == [str(k.address) for k in VALIDATORS]
    assert all(v["active"] for v in validators)
    assert api.get("/validators").json() == validators


@pytest.mark.parametrize("query, code", [
    ("limit=0", "bad_limit"), ("limit=-1", "bad_limit"), (f"limit={MAX_PAGE + 1}", "bad_limit"),
    ("limit=" + "9" * 40, "bad_limit"), ("limit=abc", "bad_limit"), ("limit=1.5", "bad_limit"), ("limit=", "bad_limit"),
    ("cursor=zz", "bad_cursor"), ("cursor=" + "00" * 31, "bad_cursor"), ("cursor=" + "00" * 33, "bad_cursor"),
    ("cursor=%C3%BC%C3%BC", "bad_cursor"), ("cursor=0", "bad_cursor"), ("cursor=", "bad_cursor"),
    (f"cursor={VALIDATORS[0].address}", "bad_cursor"),
])
def test_invalid_jobs_page_parameters_are_400(api: TestClient, query: str, code: str) -> None:
    response = api.get(f"/jobs?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("query, code", [
    ("limit=-5", "bad_limit"), ("limit=1e3", "bad_limit"), ("cursor=" + "ab" * 32, "bad_cursor"),
    ("cursor=bcai" + "G" * 40, "bad_cursor"), ("cursor=bcai" + "\u0661" * 40, "bad_cursor"),
])
def test_invalid_validators_page_parameters_are_400(api: TestClient, query: str, code: str) -> None:
    response = api.get(f"/validators?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_openapi_declares_the_page_parameters_and_headers(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    for path in ("/jobs", "/validators"):
        operation = schema["paths"][path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["limit"]["schema"]["maximum"] == MAX_PAGE and params["limit"]["schema"]["minimum"] == 1
        assert params["cursor"]["in"] == "query"
        assert {"X-Next-Cursor", "Link"} <= set(operation["responses"]["200"]["headers"])
        assert "400" in operation["responses"]


def sdk_on(api: TestClient) -> Client:
    client = Client("http://node")
    client._http = api  # TestClient is an httpx.Client
    return client


def test_sdk_iterates_every_page(api: TestClient) -> None:
    client = sdk_on(api)
    everything = api.get(f"/jobs?limit={MAX_PAGE}").json()
    assert list(client.iter_jobs(page_size=4)) == everything == client.jobs()
    assert [v["address"] for v in client.iter_validators(page_size=2)] == [str(k.address) for k in VALIDATORS]
    assert client.page("/jobs", 3) == (everything[:3], everything[2]["job_id"])
    with pytest.raises(ValueError):
        next(client.iter_jobs(page_size=MAX_PAGE + 1))


def test_sdk_refuses_pages_that_do_not_advance() -> None:
    """A hostile node answering the same cursor forever (or empty pages with a cursor)."""
    for body in (b'[{"job_id": "01"}]', b"[]"):
        client = Client("http://node")
        client._http = httpx.Client(base_url="http://node", transport=httpx.MockTransport(
            lambda request, body=body: httpx.Response(200, content=body, headers={"x-next-cursor": "01"})))
        with pytest.raises(ClientError) as caught:
            client.jobs()
        assert caught.value.code == "bad_reply"


def test_cli_job_list_reads_every_page(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = Client.page

    def page(self: Client, path: str, limit: int = 500, cursor: str | None = None) -> Any:
        self._http = TestClient(api.app, base_url="http://node")  # the CLI closes its client at the end
        asked.append(f"{limit}/{cursor}")
        return real(self, path, limit, cursor)

    monkeypatch.setattr(Client, "page", page)
    monkeypatch.setattr("bcai.sdk.client.PAGE_SIZE", 10)
    result = CliRunner().invoke(cli_app, ["job", "list", "--url", "http://node", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["jobs"]) == 25 and len(asked) == 3 and asked[0] == "10/None"
    asked.clear()
    result = CliRunner().invoke(cli_app, ["job", "list", "--url", "http://node", "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["jobs"]) == 3 and asked == ["3/None"]
