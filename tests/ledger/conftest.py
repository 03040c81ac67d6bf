"""Fixtures for the ledger tests; the harness itself is in `ledger_support.py`."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from ledger_support import Chain


@pytest.fixture
def chain(request: pytest.FixtureRequest) -> Any:
    c = Chain()
    yield c
    if os.environ.get("BCAI_WRITE_VECTORS") == "1" and c.steps:
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name).strip("_")
        c.write_vector(name)
