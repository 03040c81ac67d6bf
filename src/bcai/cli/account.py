"""`bcai account [ADDRESS | --key NAME]`: balance, nonce, stake of an account."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from bcai.cli.output import console, emit_json, fail
from bcai.crypto import PrivateKey
from bcai.errors import BcaiError, ConfigError, KeyStoreError
from bcai.sdk.client import node_answer

UrlOption = typer.Option(None, "--url", help="Node API URL (default: the running devnet's first node).")
KeyOption = typer.Option(None, "--key", help="Name of a key in HOME/keys (or in the devnet home).")
HomeOption = typer.Option(None, "--home", help="bcai home holding keys/ (default: $BCAI_HOME or the user data dir).")
JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


def check_seconds(value: float) -> float:
    """A typer callback for a wait option: `nan`, `inf` and values <= 0 would wait forever or not at all."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a positive number of seconds, got {value}")
    return value


def resolve_url(url: Optional[str]) -> str:
    from bcai.cli.devnet import get_default_url

    return url if url is not None else get_default_url()


def load_signing_key(name: str, home: Optional[Path]) -> PrivateKey:
    """Key NAME from HOME/keys, else from the default devnet home's keys (where `client` lives)."""
    from bcai.crypto.keystore import KeyStore
    from bcai.home import default_home
    from bcai.node.devnet import default_devnet_home

    stores = [KeyStore(home or default_home())]
    if home is None:
        stores.append(KeyStore(default_devnet_home()))
    for store in stores:
        if name in store.names():
            return store.load(name)
    raise KeyStoreError(f"no key named {name!r} in {' or '.join(str(s.directory) for s in stores)}")


def print_view(title: str, view: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in view.items():
        table.add_row(key, str(value))
    console.print(table)


def account(address: Optional[str] = typer.Argument(None, help="bcai... address"), key: Optional[str] = KeyOption,
            url: Optional[str] = UrlOption, home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Show an account by address or by key name.

    Example: bcai account --key client
    """
    from bcai.sdk import Client

    try:
        if (address is None) == (key is None):
            raise ConfigError("give exactly one of ADDRESS or --key NAME")
        if key is not None:
            address = str(load_signing_key(key, home).address)
        with Client(resolve_url(url)) as client:
            view = client.account(address)
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(view)
    else:
        with node_answer():
            print_view(f"account {view['address']}", view)
