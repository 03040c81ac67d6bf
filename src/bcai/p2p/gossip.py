"""Gossip rules: topics, send priorities, the seen-cache and who a message goes to.

Dissemination is flooding restricted to subscribers: a node delivers a message it has
not seen to its own handler, then forwards it to every connected peer that announced a
subscription to the topic, except the peer it came from. Each node forwards a message at
most once (the seen-cache), so a message crosses each link at most twice and reaches
every subscriber connected to the publisher through subscribers exactly once. This is
right for networks of tens of nodes; for thousands a mesh (gossipsub's D=6) would cut the
duplicate traffic, at the price of the extra protocol.

Job topics (`job/<id>`) are only ever sent to peers that subscribed to them, so model
updates never reach nodes outside the job; participants should connect to each other
directly (discovery gives their records).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from bcai.errors import InvalidGossip
from bcai.p2p.records import NodeId
from bcai.p2p.wire import is_valid_name

TOPIC_TXS = "txs"
TOPIC_CONSENSUS = "consensus"
TOPIC_BLOCKS = "blocks"
JOB_TOPIC_PREFIX = "job/"


def job_topic(job_id: str | int | bytes) -> str:
    """The overlay topic of one job: only its participants subscribe."""
    text = job_id.hex() if isinstance(job_id, bytes) else str(job_id)
    topic = JOB_TOPIC_PREFIX + text.lower()
    if not is_valid_name(topic):
        raise InvalidGossip(f"job id {job_id!r} does not make a valid topic name")
    return topic


class Priority(IntEnum):
    """Send order on each connection: lower goes first."""

    CONSENSUS = 0
    NORMAL = 1
    BULK = 2


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    priority: Priority
    # When the peer's send queue is full: wait for room (never lose it) or drop and count.
    drop_when_full: bool


_POLICIES = {
    TOPIC_CONSENSUS: TopicPolicy(Priority.CONSENSUS, drop_when_full=False),
    TOPIC_BLOCKS: TopicPolicy(Priority.NORMAL, drop_when_full=False),
    TOPIC_TXS: TopicPolicy(Priority.BULK, drop_when_full=True),
}
_JOB_POLICY = TopicPolicy(Priority.NORMAL, drop_when_full=False)
_OTHER_POLICY = TopicPolicy(Priority.BULK, drop_when_full=True)


def get_topic_policy(topic: str) -> TopicPolicy:
    if topic in _POLICIES:
        return _POLICIES[topic]
    return _JOB_POLICY if topic.startswith(JOB_TOPIC_PREFIX) else _OTHER_POLICY


def compute_message_id(data: bytes) -> bytes:
    """Message id = SHA-256 of the payload."""
    return hashlib.sha256(data).digest()


def compute_seen_key(topic: str, message_id: bytes) -> bytes:
    """The seen-cache key of a message: its id *and* its topic. Keyed by id alone, a copy of
    a message's bytes sent first on another topic (where it is rejected) would make the real
    one look like a duplicate and be dropped."""
    return message_id + topic.encode()


def compute_forward_targets(
    peer_topics: Mapping[NodeId, Iterable[str]], topic: str, exclude: NodeId | None
) -> list[NodeId]:
    """The connected peers subscribed to `topic`, minus the one the message came from."""
    return sorted(p for p, topics in peer_topics.items() if p != exclude and topic in topics)


class SeenCache:
    """Message ids seen recently: bounded in size (oldest evicted first) and in age."""

    def __init__(self, max_size: int = 100_000, ttl: float = 120.0) -> None:
        if max_size < 1 or ttl <= 0:
            raise ValueError("a seen-cache needs a positive size and ttl")
        self.max_size = max_size
        self.ttl = ttl
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def process_message_id(self, message_id: bytes, now: float) -> bool:
        """Record `message_id`; return True if it is new (not seen within the TTL)."""
        self._expire(now)
        if message_id in self._seen:
            return False
        self._seen[message_id] = now
        if len(self._seen) > self.max_size:
            self._seen.popitem(last=False)
        return True

    def is_seen(self, message_id: bytes, now: float) -> bool:
        self._expire(now)
        return message_id in self._seen

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self.ttl:
                break
            del self._seen[oldest]

    def __len__(self) -> int:
        return len(self._seen)
