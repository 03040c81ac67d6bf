"""Fixtures for the consensus tests; the harness itself is in `consensus_support.py`."""

from __future__ import annotations

import pytest

from consensus_support import Harness


@pytest.fixture
def harness() -> Harness:
    return Harness()
