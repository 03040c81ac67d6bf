"""The websocket `/events` route against hostile clients (raw ASGI messages, a fake event
source): clients that leave while nothing happens, send garbage, come too fast or too many."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bcai.api import create_app
from bcai.api.app import MAX_EVENT_SOCKETS
from bcai.node.config import ApiConfig


class EventSource:
    """The two methods `/events` uses of a node: queues of events."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue[dict[str, Any]]] = []

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1000)
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.queues.remove(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self.queues:
            queue.put_nowait(event)


class Socket:
    """One client of `/events`, speaking ASGI to the app."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []
        self.news = asyncio.Event()
        scope = {"type": "websocket", "path": "/events", "raw_path": b"/events", "query_string": b"",
                 "headers": [], "scheme": "ws", "server": ("node", 80), "client": (host, 1),
                 "root_path": "", "subprotocols": [], "asgi": {"version": "3.0"}}
        self.task = asyncio.create_task(app(scope, self.inbox.get, self._send))

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.news.set()

    async def first(self) -> dict[str, Any]:
        while not self.sent:
            self.news.clear()
            await asyncio.wait_for(self.news.wait(), 5)
        return self.sent[0]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]


def test_invalid_client_that_leaves_while_nothing_happens_is_let_go_at_once() -> None:
    async def scenario() -> None:
        source = EventSource()
        socket = Socket(create_app(source))  # type: ignore[arg-type]
        assert (await socket.first())["type"] == "websocket.accept"
        assert len(source.queues) == 1
        socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1001})
        done, _ = await asyncio.wait({socket.task}, timeout=5)  # no event came, yet the handler is done
        assert done
        assert source.queues == []
    asyncio.run(scenario())


def test_invalid_garbage_from_a_client_is_ignored_and_events_still_flow() -> None:
    async def scenario() -> None:
        source = EventSource()
        socket = Socket(create_app(source))  # type: ignore[arg-type]
        await socket.first()
        for garbage in ({"type": "websocket.receive", "text": "{not json"},
                        {"type": "websocket.receive", "bytes": b"\xff" * 10_000}):
            socket.inbox.put_nowait(garbage)
        await asyncio.sleep(0.05)
        source.publish({"type": "block", "height": 1})
        for _ in range(100):
            if socket.events():
                break
            await asyncio.sleep(0.01)
        assert socket.events() == [{"type": "block", "height": 1}] and not socket.task.done()
        socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(socket.task, 5)
    asyncio.run(scenario())


def test_invalid_too_many_event_clients_are_refused_before_the_accept() -> None:
    async def scenario() -> None:
        source = EventSource()
        app = create_app(source, ApiConfig(rate_limit_per_s=10_000))  # type: ignore[arg-type]
        sockets = [Socket(app) for _ in range(MAX_EVENT_SOCKETS)]
        assert {(await s.first())["type"] for s in sockets} == {"websocket.accept"}
        extra = Socket(app)
        assert (await extra.first())["type"] == "websocket.close" and extra.sent[0]["code"] == 1013
        assert len(source.queues) == MAX_EVENT_SOCKETS
        sockets[0].inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(sockets[0].task, 5)
        assert (await Socket(app).first())["type"] == "websocket.accept"  # a place is free again
        for s in sockets:
            s.task.cancel()
        await asyncio.gather(*(s.task for s in sockets), return_exceptions=True)
    asyncio.run(scenario())


def test_invalid_handshake_rate_is_limited_per_client() -> None:
    async def scenario() -> None:
        source = EventSource()
        app = create_app(source, ApiConfig(rate_limit_per_s=2))  # type: ignore[arg-type]
        firsts = [(await Socket(app).first())["type"] for _ in range(4)]
        assert firsts[:2] == ["websocket.accept"] * 2
        assert firsts[2:] == ["websocket.close"] * 2
        assert (await Socket(app, host="127.0.0.2").first())["type"] == "websocket.accept"  # another client
    asyncio.run(scenario())
