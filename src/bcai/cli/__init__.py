"""The `bcai` command line (Typer + Rich).

- `app.py`: the root command; each subcommand group lives in its own file and is
  registered there.
- `output.py`: one way to print results, human (Rich) or `--json`, and to turn a
  `BcaiError` into a message and an exit code.
- `keys.py`: `bcai keys new|show|list`.

`main` (the console script and `python -m bcai`) imports them only when it runs.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

from bcai.errors import Interrupted


def main(args: Optional[list[str]] = None) -> None:
    """The `bcai` console script. The commands take about a second to import; a Ctrl-C in
    that second ends the command as quietly as one later (`bcai.cli.app.main`: the rest)."""
    args = sys.argv[1:] if args is None else list(args)
    try:
        from bcai.cli.app import main as run_app
    except KeyboardInterrupt:
        error = Interrupted("interrupted")
        if "--json" in args:
            print(json.dumps({"status": "error", "error": error.to_dict()}, sort_keys=True))
        else:
            print(f"error ({error.code}): {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    run_app(args)
