"""Round checkpoints on chain for federated jobs (shell).

After each round but the last, one live worker (the lowest address among the round's live workers, so
exactly one sends it and every worker can tell which) uploads the round's aggregated model
under its dag-cbor CID (the round checkpoint, the id the models are submitted under) and
commits it with `RecordCheckpoint(job, round, cid)`; the ledger keeps the latest one per
job (`GET /jobs/{id}` -> `checkpoint`). A worker (re)joining a job in training reads that
checkpoint, loads the model and continues with the next round (`load_checkpoint`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from bcai.crypto import CODEC_DAG_CBOR, Address, Cid
from bcai.errors import BcaiError, InvalidRoundUpdate
from bcai.sdk import Client
from bcai.training.federated import RoundReport
from bcai.vm.interpreter import Session
from bcai.vm.tensors import decode_tensors, encode_tensors


def is_checkpoint_recorder(report: RoundReport, me: Address) -> bool:
    """Whether `me` records this round's checkpoint: the lowest live address does."""
    return bool(report.workers) and min(report.workers, key=lambda w: Address.parse(w).raw) == str(me)


def checkpoint_recorder(client: Client, job_id: str, session: Session, rounds: int,
                        on_round: Callable[[RoundReport], Any] | None,
                        note: Callable[[str, dict[str, Any]], None]) -> Callable[[RoundReport], Awaitable[None]]:
    """An `on_round` callback that records the round's checkpoint when it is this worker's
    turn, then calls `on_round`. The last round's model is not recorded: it is the result
    every worker submits at once (a recorder waiting for one more block there could miss
    the verdict), and nothing resumes after it. A failed record is reported (`note`), never
    fatal: the checkpoint helps a rejoining worker, the job does not depend on it."""
    key = client.key
    assert key is not None

    async def on_round_with_checkpoint(report: RoundReport) -> None:
        if report.round_index < rounds - 1 and is_checkpoint_recorder(report, key.address):
            try:
                uploaded = await asyncio.to_thread(client.upload, encode_tensors(session.get_parameters()),
                                                   CODEC_DAG_CBOR)
                if str(uploaded) != report.checkpoint:
                    raise InvalidRoundUpdate(f"round {report.round_index}: uploaded {uploaded}, "
                                             f"aggregated {report.checkpoint}")
                tx_hash = await asyncio.to_thread(client.record_checkpoint, job_id, report.round_index, uploaded)
                await asyncio.to_thread(client.wait_for_tx, tx_hash, 60.0)
                note("checkpoint", {"worker": str(key.address), "round": report.round_index, "cid": str(uploaded)})
            except BcaiError as exc:
                note("checkpoint_failed", {"worker": str(key.address), "round": report.round_index,
                                           "error": str(exc)})
        if on_round is not None:
            maybe = on_round(report)
            if asyncio.iscoroutine(maybe):
                await maybe

    return on_round_with_checkpoint


def load_checkpoint(client: Client, job: dict[str, Any], session: Session) -> int:
    """Load the job's latest committed checkpoint (if any) into `session`; return the round
    to start from (0 without a checkpoint). The download is checked against its CID."""
    checkpoint = job.get("checkpoint")
    if not checkpoint:
        return 0
    session.set_parameters(decode_tensors(client.download(Cid.parse(checkpoint["cid"]))))
    return int(checkpoint["round"]) + 1
