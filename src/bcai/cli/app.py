"""The root `bcai` command. Each group is a Typer app in its own file, registered here.

`main` runs it so that every way a command can end is an exit status plus either one line
on stderr or, with `--json`, one JSON object on stdout: a usage mistake, Ctrl-C, a file
it cannot use, a stdout that is closed or a reader that left, even a bug (no traceback
unless `BCAI_TRACEBACK=1`).
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Optional

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
from bcai.cli.output import print_error, report
from bcai.errors import BcaiError, ConfigError, FileAccessError, InternalError, Interrupted, OutputFailed

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


def run(args: list[str]) -> int:
    """Run `bcai ARGS`; the exit status. Raises only `OutputFailed`."""
    as_json = "--json" in args
    try:
        code = app(args=args, prog_name="bcai", standalone_mode=False)
    except typer.TyperException as exc:  # a missing or extra argument, a value of the wrong type or range
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already (Typer's own check)
            return exc.exit_code
        ctx = getattr(exc, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        return report(ConfigError(exc.format_message() + where), as_json)
    except typer.Abort:  # end of input at a prompt
        return report(Interrupted("aborted"), as_json)
    except OutputFailed:
        raise
    except BcaiError as exc:  # raised outside a command's own handling
        return report(exc, as_json)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # Rich writing to a reader that left
            raise OutputFailed("the reader of stdout left") from exc
        what = f"cannot use {exc.filename}: " if exc.filename else ""
        return report(FileAccessError(f"{what}{exc.strerror or exc}"), as_json)
    except Exception as exc:
        if os.environ.get("BCAI_TRACEBACK"):
            raise
        return report(InternalError(f"{type(exc).__name__}: {exc} (a bug; BCAI_TRACEBACK=1 shows where)"), as_json)
    if code == 130:  # Typer's answer to KeyboardInterrupt (no command exits 130 itself)
        return report(Interrupted("interrupted"), as_json)
    return code if isinstance(code, int) else 0


def main(args: Optional[list[str]] = None) -> None:
    """The `bcai` console script."""
    try:
        code = run(sys.argv[1:] if args is None else list(args))
    except OutputFailed as exc:
        # stdout is gone: say so on stderr unless the reader merely left early (`| head -1`),
        # and point stdout at /dev/null so that the interpreter's last flush cannot fail too
        if not isinstance(exc.__cause__, BrokenPipeError):
            print_error(exc)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        code = exc.exit_code
    sys.exit(code)
