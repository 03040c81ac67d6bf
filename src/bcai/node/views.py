"""JSON views of ledger records, as the REST API and `--json` output show them.

Bytes are hex, addresses `bcai...`, content ids base32 strings; amounts stay integers.
"""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from typing import Any

from bcai.consensus import Block, CommitCertificate
from bcai.crypto import Address, Cid, sha256
from bcai.ledger import Job, SignedTx, State, Validator
from bcai.ledger.jobs import compute_competitive_winner


def view_account(state: State, address: Address) -> dict[str, Any]:
    balance, nonce = state.get_account(address)
    view: dict[str, Any] = {"address": str(address), "balance": balance, "nonce": nonce}
    validator = state.get_validator(address)
    if validator is not None:
        view["validator"] = view_validator(address, validator)
    worker = state.get_worker(address)
    if worker is not None:
        view["worker"] = {"stake": worker.stake, "reputation": worker.reputation, "deleted": worker.deleted,
                          "slash_count": worker.slash_count, "capabilities": asdict(worker.capabilities)}
    evaluator = state.get_evaluator(address)
    if evaluator is not None:
        view["evaluator"] = {"stake": evaluator.stake, "active": evaluator.active,
                             "jobs_attested": evaluator.jobs_attested}
    return view


def view_validator(address: Address, validator: Validator) -> dict[str, Any]:
    return {"address": str(address), "public_key": validator.public_key.hex(), "bonded": validator.bonded,
            "jailed": validator.jailed, "jailed_until": validator.jailed_until,
            "missed_blocks": validator.missed_count}


def view_job(job_id: bytes, job: Job) -> dict[str, Any]:
    return {
        "job_id": job_id.hex(),
        "client": str(job.client),
        "spec_cid": str(job.spec_cid),
        "state": job.status,
        "budget": job.budget,
        "escrow": job.escrow,
        "required_evaluators": job.required_evaluators,
        "agreement_threshold_bps": job.agreement_threshold_bps,
        "deadline_height": job.deadline_height,
        "min_workers": job.min_workers,
        "max_workers": job.max_workers,
        "worker_stake": job.worker_stake,
        "posted_height": job.posted_height,
        "workers": [str(Address(a)) for a in job.workers],
        "results": {str(Address(a)): {"model_cid": str(Cid.from_bytes(cid)), "samples": samples}
                    for a, (cid, samples) in job.results.items()},
        "evaluators": [str(Address(a)) for a in job.evaluators],
        "attestations": {str(Address(a)): {"model_cid": str(Cid.from_bytes(cid)), "accuracy_bps": acc,
                                           "accept": accept}
                         for a, (cid, acc, accept) in job.attestations.items()},
        "mode": job.mode,
        # competitive jobs: model cid -> evaluator -> verdict
        "verdicts": {str(Cid.from_bytes(m)): {str(Address(e)): {"accuracy_bps": acc, "accept": accept}
                                             for e, (acc, accept) in by.items()}
                     for m, by in job.verdicts.items()},
        "winner": view_winner(job),
        "checkpoint": None if job.checkpoint is None else {
            "round": job.checkpoint[0], "cid": str(Cid.from_bytes(job.checkpoint[1])),
            "worker": str(Address(job.checkpoint[2]))},
    }


def view_winner(job: Job) -> str | None:
    """The model a completed job paid for (competitive: the winner; federated: the agreed model)."""
    if job.status != "completed":
        return None
    if job.mode == "competitive":
        winner = compute_competitive_winner(job)
    else:
        winner = next(iter({cid for cid, _, accept in job.attestations.values() if accept}), None)
    return None if winner is None else str(Cid.from_bytes(winner))


def view_value(value: Any) -> Any:
    """A tx body field as JSON: addresses and content ids as strings, bytes as hex."""
    if isinstance(value, (Address, Cid)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): view_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [view_value(v) for v in value]
    if is_dataclass(value):
        return {f.name: view_value(getattr(value, f.name)) for f in fields(value)}
    return value


def view_tx(tx: SignedTx, height: int | None = None, index: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "hash": tx.hash.hex(), "kind": tx.kind, "sender": str(tx.sender_address), "nonce": tx.nonce,
        "fee": tx.fee, "chain_id": tx.chain_id, "body": view_value(tx.body), "size": len(tx.raw),
        "status": "committed" if height is not None else "pending",
    }
    if height is not None:
        view["height"] = height
        view["index"] = index
    return view


def view_block(block: Block, certificate: CommitCertificate) -> dict[str, Any]:
    h = block.header
    return {
        "height": h.height, "hash": block.block_id.hex(), "chain_id": h.chain_id, "time_ms": h.time_ms,
        "prev_hash": h.prev_hash.hex(), "tx_root": h.tx_root.hex(), "app_hash": h.app_hash.hex(),
        "proposer": str(Address(h.proposer)), "proof_kind": h.proof_kind, "task_id": h.task_id.hex(),
        "model_hash": h.model_hash.hex(), "nonce": h.nonce, "target": h.target,
        "num_txs": len(block.txs), "txs": [sha256(tx).hex() for tx in block.txs],
        "evidence": [{"validator": str(Address(e.validator)), "height": e.height} for e in block.evidence],
        "commit": {"round": certificate.round,
                   "signers": [str(Address(a)) for a, _ in certificate.signatures]},
    }
