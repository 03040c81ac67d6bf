"""`bcai job submit|status|list|result`: post a training job from a YAML file, follow it, fetch its model.

A job file (JOB.yaml) names a BML file (path relative to the YAML) and the job's settings:

    name: digits-cnn                   # optional; default: the BML's name
    bml: digits_cnn_federated.yaml
    dataset: digits                    # the only dataset supported so far
    budget: 1000000
    rounds: 8
    local_epochs: 2
    aggregation: fedavg                # fedavg | median | trimmed_mean | krum
    target_accuracy: 0.97              # evaluators accept at or above this test accuracy
    evaluators: 2
    workers: {min: 3, max: 3}
    worker_stake: 10000
    deadline_blocks: 2000
    paradigm: federated                # federated (default) | competitive | data_parallel
    search: {lr: [0.01, 0.05]}         # competitive only: worker k trains grid point k
    checkpoint_every: 20               # data_parallel only: global steps between checkpoints

A competitive job (examples/jobs/digits_competitive.yaml): every worker trains its own
model with its point of the `search` grid (BML training keys: lr, momentum, weight_decay,
beta1, beta2, batch_size, seed), the evaluators judge each, and the best accepted one wins.
It needs workers.min == workers.max (a worker's grid point is its rank among the workers).
A data-parallel job (examples/jobs/digits_data_parallel_job.yaml) trains one model across
the workers with gloo all-reduce (`bcai.training.dp_job`).

`submit` runs the client agent: it uploads the encrypted splits, posts the job and, once
the job is assigned, releases the data keys to the assigned workers and evaluators. Only
this process holds those keys, so it must stay up until they are released.
"""

from __future__ import annotations

import asyncio
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.table import Table

from bcai.cli.account import HomeOption, JsonOption, UrlOption, check_seconds, load_signing_key, resolve_url
from bcai.cli.files import write_file
from bcai.cli.output import console, emit_json, fail
from bcai.encoding.documents import load_yaml
from bcai.errors import BcaiError, InvalidJobDocument, WrongState
from bcai.sdk.client import node_answer

app = typer.Typer(help="Post training jobs, follow them, fetch their models.", no_args_is_help=True)

DATASETS = ("digits",)
AGGREGATIONS = ("fedavg", "median", "trimmed_mean", "krum")
PARADIGMS = ("federated", "competitive", "data_parallel")
_INT_FIELDS = ("budget", "rounds", "local_epochs", "evaluators", "worker_stake", "deadline_blocks")
_KNOWN_FIELDS = {"name", "bml", "dataset", "aggregation", "target_accuracy", "workers", "paradigm", "search",
                 "checkpoint_every", *_INT_FIELDS}


@dataclass(frozen=True)
class JobFile:
    """A checked job file: the BML text and the job's settings."""

    name: str
    bml: str
    dataset: str
    budget: int
    rounds: int
    local_epochs: int
    aggregation: str
    target_accuracy_bps: int
    evaluators: int
    min_workers: int
    max_workers: int
    worker_stake: int
    deadline_blocks: int
    paradigm: str = "federated"
    search: dict[str, list[str]] = field(default_factory=dict)  # values as decimal text (no floats in CBOR)
    checkpoint_every: int = 0


def _search_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidJobDocument(f"job file: search values are numbers, got {value!r}")
    return value if isinstance(value, str) else repr(value)


def _load_search(doc: dict[str, Any], paradigm: str) -> dict[str, list[str]]:
    from bcai.training.spec import check_search

    search = doc.get("search", {})
    if search and paradigm != "competitive":
        raise InvalidJobDocument("job file: search is for paradigm: competitive")
    if not isinstance(search, dict) or not all(isinstance(v, list) for v in search.values()):
        raise InvalidJobDocument("job file: search must map training keys to lists, e.g. {lr: [0.01, 0.1]}")
    texts = {str(k): [_search_text(v) for v in values] for k, values in search.items()}
    try:
        check_search(texts)
    except InvalidJobDocument as exc:
        raise InvalidJobDocument(f"job file: {exc}") from None
    return texts


def _positive_int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if type(value) is not int or value < 1:
        raise InvalidJobDocument(f"job file: {key} must be a positive integer, got {value!r}")
    return value


def load_job_file(path: Path) -> JobFile:
    """Read and check JOB.yaml and the BML file it names; raise `InvalidJobDocument` on anything wrong."""
    from bcai.vm.frontends.bml import from_bml

    path = Path(path)
    try:
        doc = load_yaml(path.read_text())
    except OSError as exc:
        raise InvalidJobDocument(f"cannot read job file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidJobDocument(f"job file {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise InvalidJobDocument(f"job file {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidJobDocument(f"job file {path} must be a YAML mapping")
    unknown = sorted(set(map(str, doc)) - _KNOWN_FIELDS)
    if unknown:
        raise InvalidJobDocument(f"job file: unknown field(s) {unknown}")
    dataset = doc.get("dataset")
    if dataset not in DATASETS:
        raise InvalidJobDocument(f"job file: dataset {dataset!r} is not supported; the only dataset so far is "
                                 f"'digits' (scikit-learn's 8x8 digits, built in)")
    aggregation = doc.get("aggregation", "fedavg")
    if aggregation not in AGGREGATIONS:
        raise InvalidJobDocument(f"job file: aggregation must be one of {list(AGGREGATIONS)}, got {aggregation!r}")
    checkpoint_every = doc.get("checkpoint_every", 0)
    if type(checkpoint_every) is not int or checkpoint_every < 0:
        raise InvalidJobDocument(f"job file: checkpoint_every must be an integer >= 0, got {checkpoint_every!r}")
    target = doc.get("target_accuracy")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) \
            or not 0 < target <= 1:
        raise InvalidJobDocument(f"job file: target_accuracy must be a number in (0, 1], got {target!r}")
    workers = doc.get("workers")
    if not isinstance(workers, dict) or set(workers) != {"min", "max"}:
        raise InvalidJobDocument("job file: workers must be {min: N, max: M}")
    min_workers, max_workers = _positive_int(workers, "min"), _positive_int(workers, "max")
    if min_workers > max_workers:
        raise InvalidJobDocument(f"job file: workers.min {min_workers} > workers.max {max_workers}")
    ints = {key: _positive_int(doc, key) for key in _INT_FIELDS}
    paradigm = doc.get("paradigm", "federated")
    if paradigm not in PARADIGMS:
        raise InvalidJobDocument(f"job file: paradigm must be one of {list(PARADIGMS)}, got {paradigm!r}")
    search = _load_search(doc, paradigm)
    if checkpoint_every and paradigm != "data_parallel":
        raise InvalidJobDocument("job file: checkpoint_every is for data_parallel jobs (federated jobs checkpoint "
                                 "every round)")
    if paradigm == "competitive" and min_workers != max_workers:
        # each worker's grid point is its rank among the assigned workers: a volunteer joining
        # after the others have read the worker set would shift the ranks
        raise InvalidJobDocument("job file: a competitive job needs workers.min == workers.max")
    bml_name = doc.get("bml")
    if not isinstance(bml_name, str) or not bml_name:
        raise InvalidJobDocument("job file: bml must name a BML file (relative to the job file)")
    bml_path = path.parent / bml_name
    try:
        bml = bml_path.read_text()
    except OSError as exc:
        raise InvalidJobDocument(f"cannot read the BML file {bml_path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidJobDocument(f"the BML file {bml_path} is not UTF-8 text") from None
    from_bml(bml)  # raises InvalidBml with the BML's own message
    name = doc.get("name", load_yaml(bml).get("name") or path.stem)
    if not isinstance(name, str) or not name:
        raise InvalidJobDocument("job file: name must be a non-empty string")
    return JobFile(name=name, bml=bml, dataset=dataset, aggregation=aggregation,
                   target_accuracy_bps=round(float(target) * 10_000), min_workers=min_workers,
                   max_workers=max_workers, paradigm=paradigm, search=search, checkpoint_every=checkpoint_every,
                   **ints)


def load_dataset(job: JobFile) -> tuple[Any, Any]:
    """The job's train and test splits, shaped for the BML model's input."""
    from bcai.training.data import Dataset, load_digits_splits

    shape = tuple(load_yaml(job.bml)["model"]["input_shape"])
    if math.prod(shape) != 64:
        raise InvalidJobDocument(f"the digits are 64 pixels; the model's input_shape {list(shape)} does not hold 64")
    train, test = load_digits_splits()
    return Dataset(train.x.reshape(len(train), *shape), train.y), Dataset(test.x.reshape(len(test), *shape), test.y)


def _show_job(view: dict[str, Any]) -> None:
    table = Table(title=f"job {view['job_id']}", show_header=False)
    for key in ("state", "mode", "client", "spec_cid", "budget", "escrow", "deadline_height", "workers",
                "evaluators", "winner"):
        table.add_row(key, str(view.get(key)))
    if view.get("checkpoint"):
        cp = view["checkpoint"]
        table.add_row("checkpoint", f"round {cp['round']}: {cp['cid']} (by {cp['worker'][:14]}...)")
    for model, verdicts in view.get("verdicts", {}).items():
        for address, verdict in verdicts.items():
            table.add_row(f"verdict {address[:14]}...",
                          f"{model} {verdict['accuracy_bps'] / 100:.2f}% accept={verdict['accept']}")
    for address, result in view["results"].items():
        table.add_row(f"result {address[:14]}...", f"{result['model_cid']} ({result['samples']} samples)")
    for address, attest in view["attestations"].items():
        table.add_row(f"attest {address[:14]}...",
                      f"{attest['model_cid']} {attest['accuracy_bps'] / 100:.2f}% accept={attest['accept']}")
    console.print(table)


@app.command("list")
def list_jobs(url: Optional[str] = UrlOption, as_json: bool = JsonOption,
              limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                                  help="Show at most this many (default: every job).")) -> None:
    """List the chain's jobs (in job id order, read page by page).

    Example: bcai job list --limit 20 --json
    """
    from itertools import islice

    from bcai.sdk import Client
    from bcai.sdk.client import MAX_PAGE_SIZE

    try:
        with Client(resolve_url(url)) as client:
            pages = client.iter_jobs(min(limit, MAX_PAGE_SIZE)) if limit else client.iter_jobs()
            jobs = list(islice(pages, limit))
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json({"jobs": jobs})
        return
    table = Table(title=f"{len(jobs)} job(s)")
    for column in ("job id", "state", "budget", "workers", "results", "deadline"):
        table.add_column(column)
    with node_answer():
        for job in jobs:
            table.add_row(job["job_id"][:16] + "...", job["state"], str(job["budget"]), str(len(job["workers"])),
                          str(len(job["results"])), str(job["deadline_height"]))
    console.print(table)


@app.command("status")
def status(job_id: str = typer.Argument(..., help="The job id (hex, the PostJob tx hash)."),
           url: Optional[str] = UrlOption, as_json: bool = JsonOption) -> None:
    """Show one job: state, escrow, workers, results, attestations.

    Example: bcai job status 3f2a... --json
    """
    from bcai.sdk import Client

    try:
        with Client(resolve_url(url)) as client:
            view = client.job(job_id)
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(view)
    else:
        with node_answer():
            _show_job(view)


def get_accepted_model(view: dict[str, Any]) -> str:
    """The CID of the model the job paid for (the job must be completed): the winner of a
    competitive job, the agreed model of a federated one."""
    if view["state"] != "completed":
        raise WrongState(f"job {view['job_id'][:16]} is {view['state']}; only a completed job has an accepted model")
    if view.get("winner"):
        return str(view["winner"])
    accepted = {a["model_cid"] for a in view["attestations"].values() if a["accept"]}
    if len(accepted) != 1:
        raise WrongState(f"job {view['job_id'][:16]} has no single accepted model: {sorted(accepted)}")
    return accepted.pop()


@app.command("result")
def result(job_id: str = typer.Argument(..., help="The job id (hex)."),
           output: Path = typer.Option(..., "-o", "--output", help="Where to write the model (torch.save)."),
           url: Optional[str] = UrlOption, as_json: bool = JsonOption) -> None:
    """Download a completed job's accepted model and save it as a dict of tensors (torch.load opens it).

    Example: bcai job result 3f2a... -o model.pt
    """
    import torch

    from bcai.sdk import Client
    from bcai.vm.tensors import decode_tensors

    try:
        with Client(resolve_url(url)) as client:
            with node_answer():
                model_cid = get_accepted_model(client.job(job_id))
            tensors = decode_tensors(client.download(model_cid))  # checked against its CID
        buffer = io.BytesIO()
        torch.save(dict(tensors), buffer)
        write_file(output, buffer.getvalue())
    except BcaiError as exc:
        fail(exc, as_json)
    view = {"job_id": job_id, "model_cid": model_cid, "output": str(output),
            "tensors": {name: list(t.shape) for name, t in tensors.items()}}
    if as_json:
        emit_json(view)
    else:
        console.print(f"saved {len(tensors)} tensors of model {model_cid} to {output}")


async def _submit(client: Any, job: JobFile, watch: bool, timeout_s: float, say: Any) -> dict[str, Any]:
    from bcai.training.jobflow import http_channels, prepare_job, run_client, wait_job_state

    train, test = load_dataset(job)
    prepared = prepare_job(job.name, job.bml, train, test, rounds=job.rounds, local_epochs=job.local_epochs,
                           aggregation=job.aggregation, target_accuracy_bps=job.target_accuracy_bps,
                           paradigm=job.paradigm, search=job.search, checkpoint_every=job.checkpoint_every)
    released = asyncio.Event()
    seen: dict[str, Any] = {}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "posted":
            seen["job_id"] = data["job_id"]
            say(f"posted job {data['job_id']} at height {data.get('height')}")
        elif kind == "keys_released":
            released.set()
            say(f"data keys released to {data['workers']} worker(s) and {data['evaluators']} evaluator(s)")

    agent = asyncio.create_task(run_client(
        client, prepared, http_channels, budget=job.budget, worker_stake=job.worker_stake,
        required_evaluators=job.evaluators, min_workers=job.min_workers, max_workers=job.max_workers,
        deadline_blocks=job.deadline_blocks, timeout_s=timeout_s, on_event=on_event))
    keys = asyncio.create_task(released.wait())
    await asyncio.wait({agent, keys}, return_when=asyncio.FIRST_COMPLETED)
    if agent.done():  # ended before the keys went out (expired, cancelled) or failed
        keys.cancel()
        return {**agent.result(), "keys_released": False}
    if not watch:
        agent.cancel()
        return {**client.job(seen["job_id"]), "keys_released": True}
    state = ""
    while not agent.done():  # print each state change until the job ends
        view = await asyncio.to_thread(client.job, seen["job_id"])
        if view["state"] != state:
            state = view["state"]
            say(f"job {seen['job_id'][:16]}... is {state}")
        await asyncio.sleep(0.5)
    final = agent.result()
    await wait_job_state(client, seen["job_id"], {final["state"]}, 5)
    if final["state"] != state:
        say(f"job {seen['job_id'][:16]}... is {final['state']}")
    return {**final, "keys_released": True}


@app.command("submit")
def submit(job_file: Path = typer.Argument(..., help="The job file (YAML), see `bcai job --help`."),
           key: str = typer.Option(..., "--key", help="The client's key (HOME/keys or the devnet home)."),
           watch: bool = typer.Option(False, "--watch", help="Stay until the job ends, printing state changes."),
           timeout_s: float = typer.Option(3600.0, "--timeout", callback=check_seconds,
                                           help="Seconds to wait for each step."),
           url: Optional[str] = UrlOption, home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Post a training job and release its data keys when it is assigned (this process holds them).

    Example: bcai job submit examples/jobs/digits_job.yaml --key client --watch
    """
    from bcai.sdk import Client

    say = (lambda _: None) if as_json else console.print
    try:
        job = load_job_file(job_file)
        with Client(resolve_url(url), key=load_signing_key(key, home)) as client:
            view = asyncio.run(_submit(client, job, watch, timeout_s, say))
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(view)
    else:
        console.print(f"job {view['job_id']}: {view['state']}")
