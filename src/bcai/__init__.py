"""bcai: a decentralized network for training AI models.

Clients post training jobs with escrowed payment; workers train in sandboxes; evaluators
verify on held-out data; a stake-weighted BFT chain with proof of useful work records
every step and pays everyone. See ARCHITECTURE in docs/ and the README.
"""

__version__ = "0.1.0"

from typing import Any


def __getattr__(name: str) -> Any:
    # `bcai.Client` without making `import bcai` pull in httpx and the ledger
    if name == "Client":
        from bcai.sdk import Client

        return Client
    raise AttributeError(f"module 'bcai' has no attribute {name!r}")
