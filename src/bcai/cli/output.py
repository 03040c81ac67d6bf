"""Printing results: a Rich table/text for people, one JSON object with `--json`."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from bcai.errors import BcaiError

console = Console()
err_console = Console(stderr=True)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail(error: BcaiError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"status": "error", "error": error.to_dict()})
    else:
        err_console.print(f"[bold red]error[/] ({error.code}): {error}")
    raise typer.Exit(error.exit_code)
