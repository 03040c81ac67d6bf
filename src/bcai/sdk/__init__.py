"""The Python SDK: `Client(url, key=...)` over a node's REST API (see `client.py`)."""

from bcai.sdk.client import Client, ClientError, TxTimeout

__all__ = ["Client", "ClientError", "TxTimeout"]
