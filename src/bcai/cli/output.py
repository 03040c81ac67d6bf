"""Printing results: a Rich table/text for people, one JSON object with `--json`."""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from bcai.errors import BcaiError

console = Console()
err_console = Console(stderr=True)


#: C0 controls but tab and newline, DEL, C1 controls, bidi embeddings and isolates.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def compute_terminal_text(text: str) -> str:
    """Text from untrusted code (a sandboxed program's log or error message) made safe
    for a terminal: control characters and bidi overrides shown as `\\xNN`/`\\uNNNN`.
    A program's escape sequences would otherwise reach the operator's terminal (OSC 52
    writes the clipboard, CSI clears the screen or hides text)."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def compute_terminal_markup(text: str) -> str:
    """`compute_terminal_text`, then Rich markup escaped, for text interpolated into a
    markup string (a program's "[/x]" raised MarkupError, its "[green]" forged output)."""
    return escape(compute_terminal_text(text))


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail(error: BcaiError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"status": "error", "error": error.to_dict()})
    else:
        err_console.print(f"[bold red]error[/] ({error.code}): {compute_terminal_markup(str(error))}")
    raise typer.Exit(error.exit_code)
