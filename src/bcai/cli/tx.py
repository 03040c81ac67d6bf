"""`bcai tx transfer|bond|unbond ... --key NAME`: sign locally, submit, wait for the commit."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from bcai.cli.account import HomeOption, JsonOption, UrlOption, load_signing_key, print_view, resolve_url
from bcai.cli.output import console, emit_json, fail
from bcai.errors import BcaiError
from bcai.sdk.client import node_answer

app = typer.Typer(help="Sign and submit transactions (the key never leaves this machine).", no_args_is_help=True)

KeyOption = typer.Option(..., "--key", help="Name of the signing key (HOME/keys or the devnet home).")
MAX_AMOUNT = 2**64 - 1  # amounts and fees are unsigned 64-bit on chain
FeeOption = typer.Option(None, "--fee", min=0, max=MAX_AMOUNT, help="Fee (default: the chain's minimum).")
WaitOption = typer.Option(True, "--wait/--no-wait", help="Wait until the tx is committed.")


def _submit(send: Callable[..., str], key: str, url: Optional[str], home: Optional[Path], fee: Optional[int],
            wait: bool, as_json: bool, *args: object) -> None:
    from bcai.sdk import Client

    try:
        with Client(resolve_url(url), key=load_signing_key(key, home)) as client:
            tx_hash = send(client, *args, fee)
            receipt = client.wait_for_tx(tx_hash) if wait else {"hash": tx_hash, "status": "pending"}
    except BcaiError as exc:
        fail(exc, as_json)
    if as_json:
        emit_json(receipt)
    else:
        with node_answer():
            console.print(f"tx {tx_hash} {receipt['status']}" + (f" at height {receipt['height']}" if wait else ""))
        if wait:
            print_view("transaction", receipt)


@app.command("transfer")
def transfer(to: str = typer.Argument(..., help="Recipient address (bcai...)."),
             amount: int = typer.Argument(..., min=1, max=MAX_AMOUNT, help="Amount in base units."),
             key: str = KeyOption, fee: Optional[int] = FeeOption, wait: bool = WaitOption,
             url: Optional[str] = UrlOption, home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Transfer AMOUNT to TO.

    Example: bcai tx transfer bcai0123...cdef 1000 --key client
    """
    from bcai.sdk import Client

    _submit(Client.transfer, key, url, home, fee, wait, as_json, to, amount)


@app.command("bond")
def bond(amount: int = typer.Argument(..., min=1, max=MAX_AMOUNT, help="Stake to bond."), key: str = KeyOption,
         fee: Optional[int] = FeeOption, wait: bool = WaitOption, url: Optional[str] = UrlOption,
         home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Bond AMOUNT of the key's balance as validator stake.

    Example: bcai tx bond 1000 --key client
    """
    from bcai.sdk import Client

    _submit(Client.bond, key, url, home, fee, wait, as_json, amount)


@app.command("unbond")
def unbond(amount: int = typer.Argument(..., min=1, max=MAX_AMOUNT, help="Stake to unbond."), key: str = KeyOption,
           fee: Optional[int] = FeeOption, wait: bool = WaitOption, url: Optional[str] = UrlOption,
           home: Optional[Path] = HomeOption, as_json: bool = JsonOption) -> None:
    """Start unbonding AMOUNT of stake (paid back after the unbonding period).

    Example: bcai tx unbond 500 --key client
    """
    from bcai.sdk import Client

    _submit(Client.unbond, key, url, home, fee, wait, as_json, amount)
