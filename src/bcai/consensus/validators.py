"""The validator set of one height and stake-weighted proposer selection.

Proposer priority is CometBFT's weighted round robin: every step each validator's
priority grows by its voting power, the highest priority proposes (ties go to the lowest
address) and pays the total power back. Over time each validator proposes in proportion
to its power, and no one proposes twice in a row unless it holds most of the power.

Priorities are chain state: a height starts from the priorities the previous height left,
advanced once per round it took to commit. A validator joining the set starts at
-1.125 x total power (it cannot jump the queue by bonding); the set is then re-centred on 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from bcai.crypto import PublicKey


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: PublicKey
    power: int
    address: bytes = field(init=False, compare=False, repr=False)  # derived from the key

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", self.public_key.address.raw)


class ValidatorSet:
    """An immutable validator set with the proposer priorities at the start of a height."""

    __slots__ = ("validators", "by_address", "total_power", "quorum_power", "priorities", "_proposers", "_after")

    def __init__(self, validators: Iterable[Validator], priorities: Mapping[bytes, int] | None = None) -> None:
        ordered = sorted(validators, key=lambda v: v.address)
        if not ordered:
            raise ValueError("a validator set cannot be empty")
        if any(v.power <= 0 for v in ordered):
            raise ValueError("validator power must be positive")
        self.validators: tuple[Validator, ...] = tuple(ordered)
        self.by_address: dict[bytes, Validator] = {v.address: v for v in ordered}
        if len(self.by_address) != len(ordered):
            raise ValueError("duplicate validator address")
        self.total_power: int = sum(v.power for v in ordered)
        self.quorum_power: int = 2 * self.total_power // 3 + 1  # the least power that is more than 2/3
        self.priorities: dict[bytes, int] = (
            {v.address: 0 for v in ordered} if priorities is None else {v.address: priorities[v.address] for v in ordered}
        )
        self._proposers: list[bytes] = []  # proposer of round 0, 1, ... (filled lazily)
        self._after: dict[bytes, int] = self.priorities

    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, address: object) -> bool:
        return address in self.by_address

    def is_quorum(self, power: int) -> bool:
        """More than 2/3 of the voting power."""
        return power >= self.quorum_power

    def is_one_third(self, power: int) -> bool:
        """More than 1/3 of the voting power (at least one honest validator among them)."""
        return 3 * power > self.total_power

    def get_power(self, addresses: Iterable[bytes]) -> int:
        return sum(self.by_address[a].power for a in set(addresses) if a in self.by_address)

    def get_proposer(self, round_: int) -> Validator:
        while len(self._proposers) <= round_:
            prios = self.priorities if not self._proposers else self._after
            chosen, prios = compute_next_proposer(self.validators, prios, self.total_power)
            self._after = prios
            self._proposers.append(chosen)
        return self.by_address[self._proposers[round_]]

    def compute_priorities_after(self, commit_round: int) -> dict[bytes, int]:
        """The priorities the next height starts from, after committing at `commit_round`."""
        prios = dict(self.priorities)
        for _ in range(commit_round + 1):
            _, prios = compute_next_proposer(self.validators, prios, self.total_power)
        return prios

    @classmethod
    def from_priorities(cls, validators: Sequence[Validator], priorities: Mapping[bytes, int]) -> ValidatorSet:
        """A set whose members keep their priorities; joiners start at -1.125 x total power."""
        if all(v.address in priorities for v in validators):
            return cls(validators, priorities)
        total = sum(v.power for v in validators)
        joined = {v.address: priorities.get(v.address, -(total + total // 8)) for v in validators}
        mean = sum(joined.values()) // max(1, len(joined))
        return cls(validators, {a: p - mean for a, p in joined.items()})


def compute_next_proposer(
    validators: Sequence[Validator], priorities: Mapping[bytes, int], total_power: int
) -> tuple[bytes, dict[bytes, int]]:
    """One step of weighted round robin: (the proposer's address, the new priorities)."""
    prios = {v.address: priorities[v.address] + v.power for v in validators}
    chosen, best = b"", None
    for address, prio in prios.items():  # validators are sorted: the lowest address wins a tie
        if best is None or prio > best:
            chosen, best = address, prio
    prios[chosen] -= total_power
    return chosen, prios
