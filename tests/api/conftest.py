"""Fixtures of the API tests (helpers in api_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcai.node import init_home
from bcai.node.config import P2PConfig


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    init_home(home, "api-test", ("validator",), "bcai-apitest", p2p=P2PConfig(port=0))
    return home
