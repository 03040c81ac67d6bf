"""Rate limits, peer scores and bans: pure bookkeeping, the time passed in by the caller.

- `TokenBucket`: `rate` tokens per second up to `burst`; each unsolicited message costs one
  (the message rate), each unsolicited byte one (the byte rate: charged once a frame is in,
  the bucket may go into debt, and the reader waits until it is repaid).
- `PeerScores`: a score per peer, 0 for a well-behaved peer, lowered by penalties and
  drifting back toward 0 at `recovery_per_s`. At or below `ban_threshold` the peer is
  banned until `now + ban_seconds` (the shell then disconnects it and refuses it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from bcai.p2p.records import NodeId

# Penalties, in score points (the ban threshold is -100 by default).
PENALTY_RATE_LIMIT = 5.0  # each message beyond the rate limit
PENALTY_UNSOLICITED = 5.0  # a message on a topic we never subscribed to, a stray response
PENALTY_INVALID_GOSSIP = 20.0  # a topic handler rejected the message
PENALTY_MALFORMED = 25.0  # a frame that decrypts but is not a protocol message
PENALTY_BAD_FRAME = 25.0  # a frame that fails authentication (kills the connection)
PENALTY_BAD_CONTENT = 50.0  # content that does not match the CID it was asked for
PENALTY_OVERSIZED = 100.0  # a frame over the hard maximum: banned at once
PENALTY_BAD_BLOCK = 100.0  # a synced block that fails verification (an honest node serves only committed blocks)


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are enough; refill first by the time elapsed."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def charge(self, now: float, cost: float) -> None:
        """Spend `cost` tokens whether or not there are enough: the bucket goes into debt,
        for what has arrived already (a frame is charged once read, when we know its kind)."""
        self._refill(now)
        self.tokens -= cost

    def get_debt(self, now: float) -> float:
        """Tokens owed after refilling (0 when none): the caller waits `debt / rate` s."""
        self._refill(now)
        return max(0.0, -self.tokens)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now


@dataclass(slots=True)
class PeerScores:
    """Scores and bans, each table bounded by `max_tracked` at O(1) per update: identities
    are free, so a peer can come back as a new one after every ban, and a full table must
    not cost a pass over every entry per newcomer. Scores are kept least recently
    penalised first (the one dropped when full has had the longest to recover; dropping
    a score only makes us more lenient), bans in the order they end (`ban_seconds` is the
    same for all: the one dropped when full is the one that would end first)."""

    ban_threshold: float = -100.0
    ban_seconds: float = 600.0
    recovery_per_s: float = 1.0
    scores: OrderedDict[NodeId, tuple[float, float]] = field(default_factory=OrderedDict)  # id -> (score, at)
    bans: OrderedDict[NodeId, float] = field(default_factory=OrderedDict)  # id -> banned until, soonest first
    max_tracked: int = 100_000

    def get_score(self, peer: NodeId, now: float) -> float:
        score, at = self.scores.get(peer, (0.0, now))
        return min(0.0, score + (now - at) * self.recovery_per_s)

    def process_penalty(self, peer: NodeId, points: float, now: float) -> bool:
        """Lower `peer`'s score; return True when this penalty gets it banned."""
        score = self.get_score(peer, now) - points
        self.scores[peer] = (score, now)
        self.scores.move_to_end(peer)
        while len(self.scores) > self.max_tracked:
            self.scores.popitem(last=False)
        if score <= self.ban_threshold and not self.is_banned(peer, now):
            self._forget_expired_bans(now)
            self.bans[peer] = now + self.ban_seconds
            self.bans.move_to_end(peer)
            while len(self.bans) > self.max_tracked:  # a swarm of fresh identities: the first to end goes
                self.bans.popitem(last=False)
            self.scores[peer] = (0.0, now)  # after the ban it starts afresh
            return True
        return False

    def is_banned(self, peer: NodeId, now: float) -> bool:
        until = self.bans.get(peer)
        if until is None:
            return False
        if now >= until:
            del self.bans[peer]
            return False
        return True

    def _forget_expired_bans(self, now: float) -> None:
        while self.bans:
            peer, until = next(iter(self.bans.items()))
            if until > now:
                return
            del self.bans[peer]
