"""The Python SDK: `Client(url, key=...)` over a node's REST API (see `client.py`)."""

from bcai.errors import ClientError, NodeUnreachable, TxTimeout
from bcai.sdk.client import Client, TxOutcome

__all__ = ["Client", "ClientError", "NodeUnreachable", "TxOutcome", "TxTimeout"]
