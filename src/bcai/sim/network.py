"""Simulated links and partitions.

A `LinkModel` turns one send into zero, one or two deliveries with delays drawn from the
simulation's one random generator: latency = base + exponential jitter, loss, duplication,
and reordering (a message held back by an extra delay so later ones overtake it).

A `PartitionSchedule` says, for a virtual time, which nodes can talk: a list of
(start_ms, end_ms, groups) windows; two nodes in different groups of an active window
cannot reach each other. Specs: `halves@START-END`, `ring@START-END` (each node reaches
only its two neighbours), `isolate:I@START-END`, and `alternate@START-END/PERIOD`
(halves and ring, alternating every PERIOD).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bcai.errors import SimulationError


@dataclass(frozen=True, slots=True)
class LinkModel:
    latency_ms: float = 20.0
    jitter_ms: float = 10.0  # mean of the exponential extra delay
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # probability a message is held back by up to 10 x latency

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise SimulationError(f"{name} must be in [0, 1), got {p}")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise SimulationError("latency and jitter must not be negative")

    def get_delays(self, rng: random.Random) -> list[int]:
        """Delivery delays (ms) for one send: [] when lost, two when duplicated."""
        if self.loss and rng.random() < self.loss:
            return []
        delays = [self._delay(rng)]
        if self.duplicate and rng.random() < self.duplicate:
            delays.append(self._delay(rng))
        return delays

    def _delay(self, rng: random.Random) -> int:
        d = self.latency_ms + (rng.expovariate(1.0 / self.jitter_ms) if self.jitter_ms else 0.0)
        if self.reorder and rng.random() < self.reorder:
            d += rng.random() * 10 * self.latency_ms
        return max(1, int(d))


@dataclass(frozen=True, slots=True)
class PartitionWindow:
    start_ms: int
    end_ms: int
    kind: str  # "halves", "ring", "isolate", "groups"
    node: int = 0  # for "isolate"
    group_of: tuple[int, ...] = ()  # for "groups": the group of each node

    def blocks(self, a: int, b: int, n: int) -> bool:
        if self.kind == "groups":
            return self.group_of[a] != self.group_of[b]
        if self.kind == "halves":
            return (a < n // 2) != (b < n // 2)
        if self.kind == "ring":
            return (a - b) % n not in (1, n - 1)
        return (a == self.node) != (b == self.node)


@dataclass
class PartitionSchedule:
    windows: list[PartitionWindow] = field(default_factory=list)

    def is_blocked(self, a: int, b: int, n: int, now_ms: int) -> bool:
        for w in self.windows:
            if w.start_ms <= now_ms < w.end_ms and w.blocks(a, b, n):
                return True
        return False

    def get_last_heal_ms(self) -> int:
        return max((w.end_ms for w in self.windows), default=0)

    def add_spec(self, spec: str, n: int) -> None:
        """Parse one `--partition` spec (times in seconds) and add its windows."""
        try:
            kind, _, span = spec.partition("@")
            span, _, period = span.partition("/")
            start_s, _, end_s = span.partition("-")
            start, end = int(float(start_s) * 1000), int(float(end_s) * 1000)
        except ValueError:
            raise SimulationError(f"bad partition spec {spec!r} (e.g. halves@2-10, isolate:3@0-5)") from None
        if not 0 <= start < end:
            raise SimulationError(f"partition {spec!r}: start must be before end")
        if kind == "alternate":
            step = int(float(period or "2") * 1000)
            if step <= 0:
                raise SimulationError(f"partition {spec!r}: period must be positive")
            t, i = start, 0
            while t < end:
                self.windows.append(PartitionWindow(t, min(end, t + step), ("halves", "ring")[i % 2]))
                t, i = t + step, i + 1
        elif kind in ("halves", "ring"):
            self.windows.append(PartitionWindow(start, end, kind))
        elif kind.startswith("isolate:"):
            try:
                node = int(kind.split(":", 1)[1])
            except ValueError:
                raise SimulationError(f"bad node in partition spec {spec!r}") from None
            if not 0 <= node < n:
                raise SimulationError(f"partition {spec!r}: node {node} outside 0..{n - 1}")
            self.windows.append(PartitionWindow(start, end, "isolate", node))
        else:
            raise SimulationError(f"unknown partition kind in {spec!r} (halves, ring, isolate:I, alternate)")
