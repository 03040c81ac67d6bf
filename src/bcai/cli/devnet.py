"""`bcai devnet`: a local network of N node processes on 127.0.0.1 (`up`, `status`, `down`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bcai.cli.account import check_seconds
from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError, DevnetNotFound

app = typer.Typer(help="Run a local devnet of node processes.", no_args_is_help=True)

HomeOption = typer.Option(None, "--home", help="Devnet home (default: the bcai home's `devnet` folder).")
JsonOption = typer.Option(False, "--json", help="Print one JSON object.")
DEFAULT_API_URL = "http://127.0.0.1:26657"


def _home(home: Optional[Path]) -> Path:
    from bcai.node.devnet import default_devnet_home

    return home or default_devnet_home()


def get_default_url() -> str:
    """The first running devnet node's API under the default devnet home, else the default port."""
    from bcai.node.devnet import default_devnet_home, load_devnet

    try:
        nodes = load_devnet(default_devnet_home())
    except DevnetNotFound:
        return DEFAULT_API_URL
    running = [n for n in nodes if n.is_running()]
    return running[0].api_url if running else DEFAULT_API_URL


@app.command("up")
def up(n: int = typer.Option(4, "-n", "--nodes", min=1, max=32, help="Number of validator nodes."),
       home: Optional[Path] = HomeOption,
       fresh: bool = typer.Option(False, "--fresh", help="Discard an existing stopped devnet and start a new chain."),
       wait: float = typer.Option(60.0, "--wait", callback=check_seconds, help="Seconds to wait for the first commit."),
       as_json: bool = JsonOption) -> None:
    """Generate genesis and keys for N nodes (and a funded key `client`), start them as
    separate processes and wait until they commit. A stopped devnet of the same size is
    restarted where it was, unless --fresh.

    Example: bcai devnet up -n 4
    """
    from bcai.node import devnet

    home = _home(home)
    started = time.monotonic()
    try:
        nodes = devnet.up(home, n, fresh, wait)
    except BcaiError as exc:
        fail(exc, as_json)
    info = {"home": str(home), "nodes": [{"name": x.name, "api_url": x.api_url, "pid": x.pid} for x in nodes],
            "client_key": str(home / "keys" / "client.json"), "seconds": round(time.monotonic() - started, 1)}
    if as_json:
        emit_json(info)
    else:
        console.print(f"devnet of {n} nodes committing ({info['seconds']} s), home {home}")
        for x in nodes:
            console.print(f"  {x.name}  {x.api_url}  pid {x.pid}")
        console.print("  funded key: client (bcai tx transfer ADDRESS AMOUNT --key client)")


@app.command("status")
def status(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Per node: height, peers, last commit time, API URL.

    Example: bcai devnet status --json
    """
    from bcai.node.devnet import get_node_status, load_devnet

    try:
        nodes = load_devnet(_home(home))
    except BcaiError as exc:
        fail(exc, as_json)
    views = [get_node_status(node) for node in nodes]
    if as_json:
        emit_json({"nodes": views})
        return
    table = Table("name", "running", "height", "peers", "last commit", "api_url")
    for v in views:
        last = v.get("last_commit_time_ms")
        ago = f"{time.time() - last / 1000:.1f} s ago" if last else "-"
        table.add_row(v["name"], "yes" if v["running"] else "no", str(v["height"]), str(v["peers"]), ago,
                      v["api_url"])
    console.print(table)


@app.command("down")
def down(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Stop exactly the processes `devnet up` started (chain data is kept).

    Example: bcai devnet down
    """
    from bcai.node import devnet

    try:
        stopped = devnet.down(_home(home))
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped {len(stopped)} node(s): {', '.join(stopped) or '-'}")
