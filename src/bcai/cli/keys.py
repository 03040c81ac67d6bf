"""`bcai keys`: create, show and list named ed25519 keys (files are 0600)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bcai.cli.output import console, emit_json, fail
from bcai.crypto.keystore import KeyStore
from bcai.errors import BcaiError, FileAccessError
from bcai.home import default_home

app = typer.Typer(help="Manage ed25519 keys (stored under HOME/keys with mode 0600).", no_args_is_help=True)

HomeOption = typer.Option(None, "--home", help="bcai home directory (default: $BCAI_HOME or the user data dir).")
JsonOption = typer.Option(False, "--json", help="Print one JSON object.")


def _store(home: Optional[Path]) -> KeyStore:
    home = home or default_home()
    if home.exists() and not home.is_dir():  # else `list` would find no keys/ and print none
        raise FileAccessError(f"home {home} is not a directory")
    return KeyStore(home)


def _describe(name: str, store: KeyStore) -> dict[str, str]:
    key = store.load(name)
    return {"name": name, "address": str(key.address), "public_key": key.public_key.hex(),
            "path": str(store.directory / f"{name}.json")}


@app.command("new")
def new(name: str, home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Create a new key NAME.

    Example: bcai keys new alice
    """
    store = _store(home)
    try:
        store.create(name)
        info = _describe(name, store)
    except BcaiError as e:
        fail(e, as_json)
    if as_json:
        emit_json(info)
    else:
        console.print(f"created key {name}  address {info['address']}\n  file {info['path']}")


@app.command("show")
def show(name: str, home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Show the address and public key of NAME (never the secret)."""
    store = _store(home)
    try:
        info = _describe(name, store)
    except BcaiError as e:
        fail(e, as_json)
    if as_json:
        emit_json(info)
    else:
        console.print(f"{name}\n  address    {info['address']}\n  public key {info['public_key']}")


@app.command("list")
def list_keys(home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """List the keys in HOME/keys."""
    store = _store(home)
    try:
        rows = [_describe(name, store) for name in store.names()]
    except BcaiError as e:
        fail(e, as_json)
    if as_json:
        emit_json({"keys": rows})
        return
    table = Table("name", "address")
    for row in rows:
        table.add_row(row["name"], row["address"])
    console.print(table)
