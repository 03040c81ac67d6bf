"""Where bcai keeps its files: `$BCAI_HOME`, else the user's data dir (platformdirs).

On Linux that is `~/.local/share/bcai`. Every command that touches disk takes `--home`.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_home() -> Path:
    env = os.environ.get("BCAI_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("bcai", appauthor=False))
