"""Domain types of the ledger: integers and bytes that mean one thing each."""

from __future__ import annotations

from typing import NewType

Amount = NewType("Amount", int)  # tokens, 0 <= amount <= MAX_AMOUNT
Height = NewType("Height", int)  # block height; genesis state is height 0
JobId = NewType("JobId", bytes)  # 32 bytes: the hash of the tx that posted the job (also proposal ids)
Bps = NewType("Bps", int)  # basis points, 0..10000 (fixed-point fractions: 10000 = 100%)
