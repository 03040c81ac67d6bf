"""The `bcai` command line (Typer + Rich).

- `app.py`: the root command; each subcommand group lives in its own file and is
  registered there.
- `output.py`: one way to print results, human (Rich) or `--json`, and to turn a
  `BcaiError` into a message and an exit code.
- `keys.py`: `bcai keys new|show|list`.
"""
