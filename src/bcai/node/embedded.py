"""A node inside another program's event loop: `running_node(home)` starts the node from
`home`, serves its API with uvicorn on a free 127.0.0.1 port, waits for its first block and
yields `(node, api_url)`; on exit the API stops, then the node. For tests, notebooks and
programs that embed a node (`bcai node run` is the process form)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

from bcai.node.config import ApiConfig, load_config
from bcai.node.node import Node


@contextlib.asynccontextmanager
async def running_node(home: Path, api: ApiConfig | None = None, min_height: int = 1) -> AsyncIterator[tuple[Node, str]]:
    import uvicorn

    from bcai.api import create_app
    from bcai.api.server import create_server_config

    config = load_config(Path(home) / "config.toml")
    api = replace(api or config.api, host="127.0.0.1", port=0)
    node = Node(home, replace(config, api=api))
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        await node.start()
    except BaseException:
        listener.close()
        node.close()
        raise
    server = uvicorn.Server(create_server_config(create_app(node, api), api))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]  # the host program's
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started or node.app.state.height < min_height:
            if serving.done():
                serving.result()  # uvicorn failed to start: raise why
            await asyncio.sleep(0.02)
        node.api_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        yield node, node.api_url
    finally:
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        await node.stop()
