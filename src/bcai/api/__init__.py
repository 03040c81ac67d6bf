"""The REST and websocket API of a node (FastAPI + uvicorn).

- `service.py`: `NodeService`, what the API reads from and writes to a node.
- `app.py`: `create_app(service, config)`, the routes, limits and error mapping.
"""

from bcai.api.app import create_app
from bcai.api.service import NodeService

__all__ = ["NodeService", "create_app"]
