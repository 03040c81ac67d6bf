"""`bcai node`: create a node home (`init`) and run the node process (`run`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer

from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError, ConfigError
from bcai.home import default_home
from bcai.node.config import ROLES, ApiConfig, P2PConfig

app = typer.Typer(help="Create and run a bcai node.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


@app.command("init")
def init(
    home: Optional[Path] = typer.Option(None, "--home", help="Node home (default: the bcai home's `node` folder)."),
    name: str = typer.Option("node", "--name", help="Node name (shown in status and logs)."),
    roles: list[str] = typer.Option(["validator"], "--roles", help=f"Roles, repeatable: {', '.join(ROLES)}."),
    chain_id: str = typer.Option("bcai-devnet", "--chain-id", help="Chain id of the generated genesis."),
    p2p_port: int = typer.Option(26656, "--p2p-port", help="P2P listen port."),
    api_port: int = typer.Option(26657, "--api-port", help="REST API port."),
    as_json: bool = JsonOption,
) -> None:
    """Create a node home: key, config.toml, genesis.json (this node as sole validator) and
    consensus.json. To join an existing chain, replace genesis.json and consensus.json with
    the chain's and add its peers to `p2p.bootstrap` in config.toml.

    Example: bcai node init --home ./mynode --name alice --roles validator --roles worker
    """
    from bcai.node.home import init_home

    home = home or default_home() / "node"
    try:
        config = init_home(home, name, tuple(roles), chain_id, p2p=P2PConfig(port=p2p_port),
                           api=ApiConfig(port=api_port))
    except (BcaiError, ValueError) as exc:
        fail(exc if isinstance(exc, BcaiError) else ConfigError(str(exc)), as_json)
    info = {"home": str(home), "name": config.name, "chain_id": config.chain_id, "roles": list(config.roles),
            "api_url": f"http://{config.api.host}:{config.api.port}"}
    if as_json:
        emit_json(info)
    else:
        console.print(f"initialized node {name} in {home}\n  chain {config.chain_id}, roles "
                      f"{', '.join(config.roles)}\n  run it: bcai node run --home {home}")


@app.command("run")
def run(home: Optional[Path] = typer.Option(None, "--home", help="Node home (default: the bcai home's `node`)."),
        as_json: bool = JsonOption) -> None:
    """Run the node until SIGTERM or Ctrl-C (logs: HOME/logs/node.log, API: config.toml [api]).

    Example: bcai node run --home ./mynode
    """
    from bcai.node.node import Node
    from bcai.node.telemetry import setup_logging
    from bcai.p2p import tune_allocator

    tune_allocator()  # large frames reuse heap memory instead of fresh zero-filled pages
    home = home or default_home() / "node"
    try:
        node = Node(home)
    except BcaiError as exc:
        fail(exc, as_json)
    setup_logging(home, node.config.log_level, node.config.log_max_bytes, node.config.log_backups)
    if not as_json:
        api = node.config.api
        console.print(f"node {node.config.name} starting: API http://{api.host}:{api.port}, "
                      f"logs {home / 'logs' / 'node.log'}")
    try:
        asyncio.run(node.run())
    except BcaiError as exc:  # could not start (a port is taken); nothing was left running
        node.close()
        fail(exc, as_json)
    if node.fatal is not None:  # the node stopped itself; the log has the details
        error = node.fatal if isinstance(node.fatal, BcaiError) else BcaiError(f"{type(node.fatal).__name__}: {node.fatal}")
        fail(error, as_json)
