"""Rate limits, peer scores and bans: pure bookkeeping, the time passed in by the caller.

- `TokenBucket`: `rate` tokens per second up to `burst`; each unsolicited message costs one.
- `PeerScores`: a score per peer, 0 for a well-behaved peer, lowered by penalties and
  drifting back toward 0 at `recovery_per_s`. At or below `ban_threshold` the peer is
  banned until `now + ban_seconds` (the shell then disconnects it and refuses it).
"""

from __future__ import annotations

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
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass(slots=True)
class PeerScores:
    ban_threshold: float = -100.0
    ban_seconds: float = 600.0
    recovery_per_s: float = 1.0
    scores: dict[NodeId, tuple[float, float]] = field(default_factory=dict)  # id -> (score, at)
    bans: dict[NodeId, float] = field(default_factory=dict)  # id -> banned until
    max_tracked: int = 100_000

    def get_score(self, peer: NodeId, now: float) -> float:
        score, at = self.scores.get(peer, (0.0, now))
        return min(0.0, score + (now - at) * self.recovery_per_s)

    def process_penalty(self, peer: NodeId, points: float, now: float) -> bool:
        """Lower `peer`'s score; return True when this penalty gets it banned."""
        score = self.get_score(peer, now) - points
        if len(self.scores) >= self.max_tracked and peer not in self.scores:
            self._forget_recovered(now)
        self.scores[peer] = (score, now)
        if score <= self.ban_threshold and not self.is_banned(peer, now):
            if len(self.bans) >= self.max_tracked:
                self._forget_expired_bans(now)
            self.bans[peer] = now + self.ban_seconds
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
        for peer in [p for p, until in self.bans.items() if until <= now]:
            del self.bans[peer]
        while len(self.bans) >= self.max_tracked:  # a swarm of fresh identities: the oldest ban ends early
            del self.bans[min(self.bans, key=self.bans.__getitem__)]

    def _forget_recovered(self, now: float) -> None:
        for peer in [p for p in self.scores if self.get_score(p, now) >= 0.0]:
            del self.scores[peer]
        if len(self.scores) >= self.max_tracked:  # everyone is negative: drop the mildest
            mildest = max(self.scores, key=lambda p: self.get_score(p, now))
            del self.scores[mildest]
