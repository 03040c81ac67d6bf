"""The root `bcai` command. Each group is a Typer app in its own file, registered here."""

from __future__ import annotations

import typer

from bcai.cli import demo, keys

app = typer.Typer(
    help="bcai: a decentralized network for training AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(keys.app, name="keys")
app.command("demo")(demo.demo)


def main() -> None:
    app()
