"""Printing results: a Rich table/text for people, one JSON object with `--json`.

`console` does not read Rich markup: the names, paths and node answers it prints may hold
brackets (`[/x]`), which markup would take for tags (and fail on). Errors are one line on
stderr, never wrapped, with the message escaped.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from bcai.errors import BcaiError, OutputFailed

console = Console(markup=False)
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
    text = json.dumps(obj, sort_keys=True, default=str) + "\n"
    if sys.stdout is None:  # started with stdout closed (`bcai ... >&-`)
        raise OutputFailed("cannot write the result: stdout is closed")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError) as exc:  # a reader that left (EPIPE), a full disk, a closed file
        raise OutputFailed(f"cannot write the result to stdout: {getattr(exc, 'strerror', None) or exc}") from exc


def print_error(error: BcaiError) -> None:
    err_console.print(f"[bold red]error[/] ({error.code}): {compute_terminal_markup(str(error))}", soft_wrap=True)


def report(error: BcaiError, as_json: bool) -> int:
    """Print `error` as one JSON object on stdout (`--json`) or one line on stderr; its exit code."""
    if as_json:
        emit_json({"status": "error", "error": error.to_dict()})
    else:
        print_error(error)
    return error.exit_code


def fail(error: BcaiError, as_json: bool) -> NoReturn:
    raise typer.Exit(report(error, as_json))
