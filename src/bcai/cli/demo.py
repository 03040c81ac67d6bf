"""`bcai demo`: the main job end to end on a local devnet (see `bcai.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError


def demo(
    home: Optional[Path] = typer.Option(None, "--home", help="Devnet home (default: a fresh temporary directory)."),
    keep: bool = typer.Option(False, "--keep", help="Leave the devnet running afterwards."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end, nothing else."),
) -> None:
    """Boot a 4-validator devnet, train a CNN on digits as a federated job, settle payment.

    Example: bcai demo --json
    """
    from bcai.demo.job import BUDGET
    from bcai.demo.run import run_demo

    def progress(kind: str, data: dict[str, Any]) -> None:
        if as_json:
            return
        if kind == "round":
            console.print(f"  round {data['round']}: loss {data['loss']:.4f}  shard accuracy {data['accuracy']:.3f}"
                          f"  workers {data['workers']}  checkpoint {data['checkpoint'][:16]}…", soft_wrap=True)
        elif kind in ("devnet", "setup"):
            console.print(f"{kind}: {data['message']}")
        elif kind == "posted":
            console.print(f"job posted {data['job_id'][:16]}... at height {data.get('height')}")
        elif kind == "checkpoint":
            console.print(f"  round {data['round'] + 1} checkpoint {str(data['cid'])[:16]}… recorded on chain",
                          soft_wrap=True)
        elif kind in ("volunteered", "submitted", "attested"):
            who = str(data.get("worker") or data.get("evaluator"))
            extra = f" accuracy {data['accuracy_bps'] / 100:.2f}% accept={data['accept']}" if kind == "attested" else ""
            console.print(f"  {kind}: {who[:14]}... at height {data.get('height')}{extra}")
        else:
            console.print(kind, style="bold")

    try:
        result = run_demo(home, progress, keep=keep)
    except BcaiError as e:
        fail(e, as_json)
    if as_json:
        emit_json(result.to_dict())
        return
    console.print()
    console.print(f"job {result.state}  test accuracy {result.accuracy * 100:.2f}%  "
                  f"model {result.model_cid}")
    steps: dict[str, list[int]] = {}
    for step, height in result.job_blocks.items():
        steps.setdefault(step.split(":")[0], []).append(height)
    console.print(f"chain height {result.height}; the job's blocks: " + ", ".join(
        f"{name} @{min(h)}" + (f"-{max(h)}" if max(h) != min(h) else "") + (f" (x{len(h)})" if len(h) > 1 else "")
        for name, h in steps.items()), soft_wrap=True)
    table = Table("participant", "address", "before", "after", "paid by the job")
    for address, role in result.roles.items():
        table.add_row(role, address, str(result.balances_before[address]),
                      str(result.balances_after[address]), str(result.payouts.get(address, "-")))
    console.print(table)
    console.print(f"budget {BUDGET}: network fee {result.network_fee} to validators, "
                  f"workers {sum(v for a, v in result.payouts.items() if result.roles[a].startswith('worker'))}, "
                  f"evaluators {sum(v for a, v in result.payouts.items() if result.roles[a].startswith('evaluator'))}, "
                  f"treasury +{result.treasury_share}; wall {result.wall_seconds} s")
