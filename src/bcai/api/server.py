"""How a node serves its API: uvicorn, with a deadline on each request's headers.

uvicorn times a connection out only while it is idle between requests, and any byte resets
that timer; before a connection's first request nothing times it out. So a client that
opens connections and sends nothing, or trickles a request's headers a byte at a time,
holds a socket (a file descriptor of the node's process, shared with its p2p) for ever.
`HeaderDeadlineProtocol` closes a connection that has not sent a request's complete
headers within `header_timeout_s` of opening or of its previous response; that includes
a client still sending a body the app answered without reading (a GET with a trickled
body). Bodies being read have their own deadline, `body_timeout_s`, in the app's limits
middleware.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bcai.node.config import ApiConfig


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self._answering():
            self._header_timer.cancel()  # a request's headers are in: the app has it
            self._header_timer = None

    def _answering(self) -> bool:
        """A request's headers are in and its answer is not complete (h11 puts the server in
        SEND_RESPONSE on a request's headers; also a websocket upgrade's)."""
        return self.conn.our_state in (h11.SEND_RESPONSE, h11.SEND_BODY)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request's headers have the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.get_protocol() is self and not self._answering() and not self.transport.is_closing():
            self.transport.close()


def create_server_config(app: Any, api: ApiConfig) -> uvicorn.Config:
    """The uvicorn config a node serves `app` with (`bcai node run`)."""
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": float(api.header_timeout_s)})
    return uvicorn.Config(app, host=api.host, port=api.port, http=protocol, log_level="warning",
                          access_log=False, lifespan="off")
