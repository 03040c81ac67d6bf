"""The root `bcai` command. Each group is a Typer app in its own file, registered here."""

from __future__ import annotations

import typer

from bcai.cli import demo
from bcai.cli import genesis
from bcai.cli import keys
from bcai.cli import sandbox

app = typer.Typer(
    help="bcai: a decentralized network for training AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(genesis.app, name="genesis")
app.add_typer(keys.app, name="keys")
app.add_typer(sandbox.app, name="sandbox")
app.command("demo")(demo.demo)


def main() -> None:
    app()
