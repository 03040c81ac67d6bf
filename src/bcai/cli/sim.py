"""`bcai sim`: run a deterministic simulated validator network and check its invariants.

Example:

    bcai sim --validators 7 --byzantine 2:equivocate --partition alternate@0-6/1 --loss 0.1 --heights 20 --json

Exit status 0 when every checker held (agreement, validity, liveness, accountability,
supply), 1 when one broke, 2 on a bad option.
"""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError, SimulationError
from bcai.sim import SimConfig, run_simulation

app = typer.Typer(help="Simulate a validator network (virtual clock, one seed) and check its invariants.")


def _parse_byzantine(specs: list[str]) -> list[tuple[int, str]]:
    out = []
    for spec in specs:
        count, sep, kind = spec.partition(":")
        if not sep or not count.isdigit():
            raise SimulationError(f"bad --byzantine {spec!r}: use COUNT:KIND, e.g. 1:equivocate")
        out.append((int(count), kind))
    return out


@app.callback(invoke_without_command=True)
def sim(
    validators: int = typer.Option(4, "--validators", help="Number of validators."),
    stake_dist: str = typer.Option("equal", "--stake-dist", help="equal or zipf."),
    byzantine: Optional[List[str]] = typer.Option(
        None, "--byzantine",
        help="COUNT:KIND, repeatable; KIND is equivocate, silent, bad-pouw, amnesia, garbage or duplicate-key.",
    ),
    partition: Optional[List[str]] = typer.Option(
        None, "--partition", help="halves@S-E, ring@S-E, isolate:I@S-E or alternate@S-E/PERIOD (seconds); repeatable."
    ),
    crash: Optional[List[str]] = typer.Option(None, "--crash", help="I@T+D: crash node I at T s, restart D s later; repeatable."),
    loss: float = typer.Option(0.0, "--loss", help="Probability a message is lost."),
    duplicate: float = typer.Option(0.0, "--duplicate", help="Probability a message is delivered twice."),
    reorder: float = typer.Option(0.0, "--reorder", help="Probability a message is held back (reordered)."),
    heights: int = typer.Option(10, "--heights", help="Stop once every honest node committed this many blocks."),
    seed: int = typer.Option(0, "--seed", help="The one seed that drives the run."),
    matrix_n: int = typer.Option(32, "--matrix-n", help="Size of the PoUW matrix task."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one simulation; exit 0 when every checker held, 1 when one broke."""
    try:
        if validators < 1 or heights < 1:
            raise SimulationError("--validators and --heights must be at least 1")
        config = SimConfig(
            validators=validators, stake_dist=stake_dist, byzantine=_parse_byzantine(byzantine or []),
            partitions=list(partition or []), crashes=list(crash or []), loss=loss, duplicate=duplicate,
            reorder=reorder, heights=heights, seed=seed, matrix_n=matrix_n,
        )
        report = run_simulation(config)
    except (BcaiError, ValueError) as exc:
        err = exc if isinstance(exc, BcaiError) else SimulationError(str(exc))
        fail(err, as_json)
    if as_json:
        emit_json(report.to_dict())
    else:
        table = Table(title=f"bcai sim: {validators} validators, seed {seed}")
        table.add_column("field")
        table.add_column("value")
        for key, value in report.to_dict().items():
            table.add_row(key, str(value))
        console.print(table)
    raise typer.Exit(0 if report.ok else 1)
