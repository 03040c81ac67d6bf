"""`bcai status`: a node's chain, height, peers and mempool."""

from __future__ import annotations

from typing import Optional

import typer

from bcai.cli.account import JsonOption, UrlOption, print_view, resolve_url
from bcai.cli.output import emit_json, fail
from bcai.errors import BcaiError
from bcai.sdk.client import node_answer

def status(url: Optional[str] = UrlOption, as_json: bool = JsonOption) -> None:
    """Show the status of the node at --url (default: the running devnet's first node).

    Example: bcai status --json
    """
    from bcai.sdk import Client

    try:
        with Client(resolve_url(url)) as client:
            view = client.status()
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(view)
    else:
        with node_answer():
            print_view(f"node {view['name']} ({view['chain_id']})", view)
