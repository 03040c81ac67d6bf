"""The root `bcai` command. Each group is a Typer app in its own file, registered here."""

from __future__ import annotations

import typer

from bcai.cli import account
from bcai.cli import demo
from bcai.cli import devnet
from bcai.cli import genesis
from bcai.cli import job
from bcai.cli import keys
from bcai.cli import node
from bcai.cli import sandbox
from bcai.cli import sim
from bcai.cli import status
from bcai.cli import tx
from bcai.cli import vm

app = typer.Typer(
    help="bcai: a decentralized network for training AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("account")(account.account)  # a single command: `bcai account ADDRESS`
app.command("demo")(demo.demo)
app.add_typer(devnet.app, name="devnet")
app.add_typer(genesis.app, name="genesis")
app.add_typer(job.app, name="job")
app.add_typer(keys.app, name="keys")
app.add_typer(node.app, name="node")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(sim.app, name="sim")
app.command("status")(status.status)
app.add_typer(tx.app, name="tx")
app.add_typer(vm.app, name="vm")


def main() -> None:
    app()
