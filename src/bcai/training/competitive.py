"""Competitive jobs: every worker trains its own model with its own hyperparameters, the
evaluators judge each one, and the best accepted model wins (the ledger's rule,
`bcai.ledger.jobs.compute_competitive_winner`).

Pure core:
- `compute_search_grid(search)`: the grid of a spec's `search` (cartesian product, keys in
  sorted order, each key's values in the order given).
- `compute_worker_choice(search, workers, me)`: the worker of rank k among the job's
  assigned workers (sorted by address bytes) takes grid point k mod the grid size; workers
  past the grid's end repeat it with another seed (`seed_offset`), so no two workers train
  the same model (the ledger refuses a model CID another worker already submitted).
- `apply_choice(bml, choice)`: the BML document with those training values set.

Shell (called from `bcai.training.jobflow`, which dispatches on the spec's paradigm):
- `train_and_submit_competitive`: the worker's part after it has its train split: train
  `rounds x local_epochs` epochs on the whole split, upload the model, submit it.
- `evaluate_competitive`: the evaluator's part: attest every model as it is submitted,
  until every assigned worker's model is attested or the job ends.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid, PrivateKey
from bcai.encoding.documents import load_yaml
from bcai.errors import BcaiError, InvalidJobDocument, JobTimeout
from bcai.sdk import Client
from bcai.training.data import Dataset
from bcai.training.spec import JobSpec, parse_search_value
from bcai.verify.evaluation import Evaluation, evaluate_model
from bcai.vm.frontends.bml import from_bml, parse_bml
from bcai.vm.interpreter import VM
from bcai.vm.loop import train_epochs
from bcai.vm.tensors import compute_tensors_hash, encode_tensors

TERMINAL = ("completed", "failed", "expired", "cancelled")
POLL_S = 0.2


# --- pure core -------------------------------------------------------------------------


def compute_search_grid(search: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every grid point of `search`; a spec without a search has one point, `{}`."""
    keys = sorted(search)
    return [dict(zip(keys, values)) for values in itertools.product(*(search[k] for k in keys))]


@dataclass(frozen=True)
class WorkerChoice:
    rank: int  # this worker's rank among the job's workers, by address
    grid_index: int
    values: dict[str, str]  # BML training key -> value (decimal text)
    seed_offset: int  # added to the BML seed: > 0 only for workers past the grid's end


def compute_worker_choice(search: dict[str, list[str]], workers: list[Address], me: Address) -> WorkerChoice:
    ranked = sorted(workers, key=lambda a: a.raw)
    if me not in ranked:
        raise InvalidJobDocument(f"{me} is not a worker of this job")
    grid = compute_search_grid(search)
    rank = ranked.index(me)
    return WorkerChoice(rank, rank % len(grid), grid[rank % len(grid)], rank // len(grid))


def apply_choice(bml: str, choice: WorkerChoice) -> str:
    """The BML text with the choice's training values (and seed offset) applied."""
    parse_bml(bml)  # a hostile document fails here as InvalidBml, before it is edited
    doc = load_yaml(bml)
    training = doc.setdefault("training", {})
    for key, text in choice.values.items():
        training[key] = parse_search_value(key, text)
    if choice.seed_offset:
        training["seed"] = int(training.get("seed", 0)) + choice.seed_offset
    return str(yaml.safe_dump(doc, sort_keys=True))


# --- worker ----------------------------------------------------------------------------


@dataclass
class CompetitiveResult:
    model: bytes  # canonical tensor bytes of the trained parameters
    model_cid: Cid  # their dag-cbor CID, the one submitted
    samples_processed: int
    choice: WorkerChoice


def train_competitive(spec: JobSpec, choice: WorkerChoice, data: Dataset) -> CompetitiveResult:
    """Train this worker's model: `rounds x local_epochs` epochs over the whole split."""
    program = from_bml(apply_choice(spec.bml, choice))
    session = VM(deterministic=True).load(program)
    for chunk in range(spec.rounds):
        train_epochs(session, data.x, data.y, epochs=spec.local_epochs, seed=program.seed + chunk)
    params = session.get_parameters()
    return CompetitiveResult(encode_tensors(params), compute_tensors_hash(params),
                             len(data) * spec.rounds * spec.local_epochs, choice)


async def train_and_submit_competitive(client: Client, job_id: str, spec: JobSpec, key: PrivateKey,
                                       workers: list[Address], data: Dataset,
                                       note: Callable[[str, dict[str, Any]], None]) -> CompetitiveResult:
    choice = compute_worker_choice(spec.search, workers, key.address)
    note("hyperparameters", {"worker": str(key.address), "grid_index": choice.grid_index, **choice.values})
    result = await asyncio.to_thread(train_competitive, spec, choice, data)
    uploaded = await asyncio.to_thread(client.upload, result.model, CODEC_DAG_CBOR)
    metrics = {"grid_index": choice.grid_index, "seed_offset": choice.seed_offset}
    tx_hash = await asyncio.to_thread(client.submit_result, job_id, uploaded, result.samples_processed, metrics)
    receipt = await asyncio.to_thread(client.wait_for_tx, tx_hash, 60.0)
    note("submitted", {"worker": str(key.address), "model_cid": str(uploaded), "height": receipt.get("height")})
    return result


# --- evaluator -------------------------------------------------------------------------


async def evaluate_competitive(client: Client, job_id: str, spec: JobSpec, test: Dataset, *, timeout_s: float,
                               note: Callable[[str, dict[str, Any]], None]) -> list[Evaluation]:
    """Attest every submitted model once, as results arrive, accepting at the spec's target.

    Returns when every assigned worker's model is attested, or the job has ended (a
    worker that never submits: the ledger settles at the deadline).
    """
    program = from_bml(spec.bml)
    attested: set[str] = set()
    evaluations: list[Evaluation] = []
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            job = await asyncio.to_thread(client.job, job_id)
        except BcaiError:
            job = None
        if job is not None:
            if job["state"] in TERMINAL:
                return evaluations
            for cid in sorted({r["model_cid"] for r in job["results"].values()} - attested):
                try:
                    model = await asyncio.to_thread(client.download, cid)
                except BcaiError:
                    continue  # not reachable yet: try again next poll (never reject what we could not see)
                evaluation = await asyncio.to_thread(_evaluate_one, program, model, test)
                accuracy_bps = evaluation.accuracy_bps if evaluation else 0
                accept = evaluation is not None and accuracy_bps >= spec.target_accuracy_bps
                tx_hash = await asyncio.to_thread(client.attest, job_id, Cid.parse(cid), accuracy_bps, accept)
                receipt = await asyncio.to_thread(client.wait_for_tx, tx_hash, 60.0)
                attested.add(cid)
                if evaluation is not None:
                    evaluations.append(evaluation)
                note("attested", {"evaluator": str(client.key.address) if client.key else "", "model_cid": cid,
                                  "accuracy_bps": accuracy_bps, "accept": accept, "height": receipt.get("height")})
            if len(attested) == len(job["workers"]):
                return evaluations
        if time.monotonic() > deadline:
            raise JobTimeout(f"competitive job {job_id[:16]}: {len(attested)} model(s) attested after {timeout_s} s")
        await asyncio.sleep(POLL_S)


def _evaluate_one(program: Any, model: bytes, test: Dataset) -> Evaluation | None:
    try:
        return evaluate_model(program, model, test)
    except BcaiError:
        return None  # a malformed model cannot be accepted
