"""The REST and websocket API of a node (FastAPI + uvicorn).

- `service.py`: `NodeService`, what the API reads from and writes to a node.
- `app.py`: `create_app(service, config)`, the routes, limits and error mapping.
- `server.py`: `create_server_config(app, config)`, uvicorn as a node runs it (a deadline on
  each request's headers).
"""

from bcai.api.app import create_app
from bcai.api.service import NodeService

__all__ = ["NodeService", "create_app"]
