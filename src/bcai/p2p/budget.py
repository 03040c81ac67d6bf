"""Memory budgets for the bytes connections hold: pure bookkeeping, the shell decides
when to wait, drop or disconnect.

Every connection has an `Account`:

- `recv`: what the peer made us hold: a frame being received (charged from its length
  prefix on, before its buffer exists), a message while it is handled, each of its
  requests until the response is queued, the response included. Capped per connection
  at `peer_recv_limit`.
- `send`: what we queued for it (per lane capped by the send queue itself).

`total` is the sum over connections, with a message body queued for several peers (a
forwarded block shares one `bytes` object) counted once, because it is in memory once.
It is capped at `total_limit`: over it, the connection holding the most is the one that
cannot keep up, and the shell disconnects it (`make_room`).

Sealed frames (the per-peer ciphertext in each writer) are a separate pool, `seal_limit`:
writers wait for room there rather than disconnect anyone, since a broadcast to every
peer seals the same message once per peer. The pool always lets one frame through when
nothing else is sealed, so a frame over the limit cannot stall every writer.

Connections themselves are a third pool, `conn_limit`: each open connection, from accept
or dial to close (half-open handshakes included), holds its transport's fixed worst case
(`Transport.connection_bytes`: kernel socket buffers and the stream's own buffers), so
the number of connections times what each may hold is bounded. A connection that does
not fit is refused, nobody is cut off for it; inbound ones must also leave room for
`reserve` bytes (the outbound connections the host may still open), so callers cannot
crowd out the connections we choose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Account:
    """One connection's bytes; `evict` disconnects it (the shell's callback)."""

    evict: Callable[[], None] = field(default=lambda: None, repr=False)
    recv: int = 0
    send: int = 0
    closed: bool = False

    @property
    def held(self) -> int:
        return self.recv + self.send


class BufferBudget:
    def __init__(self, total_limit: int, peer_recv_limit: int, seal_limit: int, conn_limit: int = 1 << 62) -> None:
        if min(total_limit, peer_recv_limit, seal_limit, conn_limit) <= 0:
            raise ValueError("memory budgets must be positive")
        self.total_limit = total_limit
        self.peer_recv_limit = peer_recv_limit
        self.seal_limit = seal_limit
        self.conn_limit = conn_limit
        self.connections = 0  # bytes held by open connections' buffers (worst case each)
        self.peak_connections = 0
        self.total = 0
        self.sealed = 0
        self.peak_total = 0
        self.peak_sealed = 0
        self.evictions = 0
        self.accounts: set[Account] = set()
        self._bodies: dict[int, list[int]] = {}  # id(body) -> [queued copies, size]: counted once
        # set whenever receive-side bytes or sealing room come back (waiters re-check)
        self.recv_released = asyncio.Event()
        self.seal_released = asyncio.Event()

    def open_account(self, evict: Callable[[], None]) -> Account:
        account = Account(evict)
        self.accounts.add(account)
        return account

    def close_account(self, account: Account) -> None:
        """Give back what the connection still holds on the receive side (its send queue
        gives its entries back itself); later releases for it are ignored."""
        if account.closed:
            return
        account.closed = True
        self.accounts.discard(account)
        self.total -= account.recv
        account.recv = 0
        self.recv_released.set()
        self.seal_released.set()  # its writer may be waiting there: it must see the close

    # --- receive side -------------------------------------------------------------

    def is_within_peer_limit(self, account: Account, size: int) -> bool:
        """Whether `size` more fits the connection's receive limit (one frame always
        fits an account holding nothing)."""
        return not account.recv or account.recv + size <= self.peer_recv_limit

    def charge_recv(self, account: Account, size: int) -> None:
        if account.closed:
            return
        account.recv += size
        self._add(size)

    def release_recv(self, account: Account, size: int) -> None:
        if account.closed:
            return
        account.recv -= size
        self.total -= size
        self.recv_released.set()

    # --- send side ----------------------------------------------------------------

    def get_send_cost(self, head: bytes, body: bytes) -> int:
        """What queuing (head, body) adds to the total: a body already queued elsewhere is free."""
        return len(head) + (0 if id(body) in self._bodies else len(body))

    def charge_send(self, account: Account, head: bytes, body: bytes) -> None:
        account.send += len(head) + len(body)
        shared = self._bodies.get(id(body))
        if shared is not None:
            shared[0] += 1
            self._add(len(head))
        else:
            self._bodies[id(body)] = [1, len(body)]
            self._add(len(head) + len(body))

    def release_send(self, account: Account, head: bytes, body: bytes) -> None:
        account.send -= len(head) + len(body)
        self.total -= len(head)
        shared = self._bodies[id(body)]
        shared[0] -= 1
        if not shared[0]:
            del self._bodies[id(body)]
            self.total -= shared[1]

    # --- the total ----------------------------------------------------------------

    def is_affordable(self, cost: int) -> bool:
        return self.total + cost <= self.total_limit

    def make_room(self, cost: int) -> None:
        """Disconnect the connections holding the most until `cost` more fits the total
        (or nobody holds anything: one frame is always let through)."""
        while not self.is_affordable(cost):
            heaviest = max(self.accounts, key=lambda a: a.held, default=None)
            if heaviest is None or not heaviest.held:
                return
            self.evictions += 1
            heaviest.evict()
            self.close_account(heaviest)  # in case `evict` did not

    def _add(self, size: int) -> None:
        self.total += size
        self.peak_total = max(self.peak_total, self.total)

    # --- sealed frames --------------------------------------------------------------

    def try_seal(self, size: int) -> bool:
        """Take `size` bytes of the sealing pool if they fit (or the pool is empty)."""
        if self.sealed and self.sealed + size > self.seal_limit:
            return False
        self.sealed += size
        self.peak_sealed = max(self.peak_sealed, self.sealed)
        return True

    def release_seal(self, size: int) -> None:
        self.sealed -= size
        self.seal_released.set()

    # --- connections ----------------------------------------------------------------

    def try_open_connection(self, cost: int, reserve: int = 0) -> bool:
        """Take `cost` bytes of the connection pool if they fit with `reserve` to spare."""
        fits = self.connections + cost + reserve <= self.conn_limit
        if fits:
            self.connections += cost
            self.peak_connections = max(self.peak_connections, self.connections)
        return fits

    def close_connection(self, cost: int) -> None:
        self.connections -= cost
