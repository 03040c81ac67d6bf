"""A node's structured logs (JSON lines in HOME/logs/node.log) and Prometheus metrics.

Metrics live in the node's own `CollectorRegistry` (not the process-global one), so two
nodes in one process, as in the tests, never share or clash over counters.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(home: Path, level: str = "info", max_bytes: int = 64 << 20, backups: int = 4) -> logging.Handler:
    """Send the `bcai` loggers to HOME/logs/node.log as JSON lines, rotated at `max_bytes`
    (node.log.1 ... node.log.BACKUPS are kept): what peers make a node log cannot fill its disk."""
    logs = Path(home) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(logs / "node.log", maxBytes=max_bytes, backupCount=backups)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger("bcai")
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


class NodeMetrics:
    """The node's Prometheus metrics (names prefixed `bcai_`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("bcai_height", "Height of the last committed block", registry=r)
        self.peers = Gauge("bcai_peers", "Connected p2p peers", registry=r)
        self.mempool_txs = Gauge("bcai_mempool_txs", "Transactions waiting in the mempool", registry=r)
        self.mempool_bytes = Gauge("bcai_mempool_bytes", "Bytes of transactions in the mempool", registry=r)
        self.blocks = Counter("bcai_blocks_committed", "Blocks committed", registry=r)
        self.txs = Counter("bcai_txs_committed", "Transactions committed", registry=r)
        self.txs_received = Counter("bcai_txs_received", "Transactions received", ["source", "result"], registry=r)
        self.rejected = Counter("bcai_consensus_rejected", "Consensus messages or blocks refused", registry=r)
        self.evidence = Counter("bcai_evidence_found", "Equivocation evidence found", registry=r)
        self.block_interval = Histogram("bcai_block_interval_seconds", "Wall time between local commits",
                                        buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=r)
        self._last_commit: float | None = None

    def watch_p2p(self, counters: Mapping[str, int]) -> None:
        """Export the p2p host's event counters (bans, handshake failures, oversized
        frames, rate-limited messages, ...) as `bcai_p2p_events_total{event=...}`."""
        self.registry.register(_P2PCollector(counters))

    def process_commit(self, height: int, tx_count: int) -> None:
        now = time.monotonic()
        if self._last_commit is not None:
            self.block_interval.observe(now - self._last_commit)
        self._last_commit = now
        self.height.set(height)
        self.blocks.inc()
        self.txs.inc(tx_count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _P2PCollector(Collector):
    """Reads the host's `Counter` at scrape time (no second copy to keep in step)."""

    def __init__(self, counters: Mapping[str, int]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("bcai_p2p_events", "P2P host events by kind", labels=["event"])
        for event, count in sorted(self.counters.items()):
            family.add_metric([event], float(count))
        yield family
