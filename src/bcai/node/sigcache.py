"""`VerifiedSignatures`: a bounded set of tx hashes whose signature this node has verified.

A tx's signature is a pure function of its bytes (payload, sender, chain id and signature
are all inside them), so once `process_tx` has verified the signature of a tx with a given
hash, checking it again on this node proves nothing new. The node passes this cache to
the ledger (`process_tx(..., verified)` / `process_block(..., verified)`), which then skips
only the signature check for a known hash: the nonce, fee, balance and every other rule
still run on each application. A tx whose bytes differ in any way has another hash and is
verified again. Without it, each tx was verified up to four times per node: on arrival,
in a proposal's dry run, in `check_payload`, and in every mempool re-check after a block.

Bounded: the oldest entries are forgotten first (insertion order), so memory stays at
`capacity` hashes whatever a peer sends; a forgotten tx is merely verified again.
"""

from __future__ import annotations

DEFAULT_CAPACITY = 100_000


class VerifiedSignatures:
    """See the module docstring. Pure: a dict used as an insertion-ordered set."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._hashes: dict[bytes, None] = {}

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, tx_hash: bytes) -> None:
        hashes = self._hashes
        if tx_hash in hashes:
            return
        if len(hashes) >= self.capacity:
            del hashes[next(iter(hashes))]
        hashes[tx_hash] = None
