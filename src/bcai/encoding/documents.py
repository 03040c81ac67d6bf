"""Text documents from people, from disk and from the chain, read without surprises.

`load_json(text)` and `load_toml(text)` are `json.loads` / `tomllib.loads` where a document
nested too deeply for the parser's recursion is a `ValueError` like any other malformed
one (both parsers recurse per level and would raise a bare `RecursionError`), and
`read_utf8(path)` is the file's text with bad UTF-8 a `ValueError` as well: a caller
catches `(OSError, ValueError)` and turns them into its own clear error.

`load_yaml(text)` is `yaml.safe_load` with two limits that PyYAML does not have: nesting
at most `MAX_DEPTH` levels (PyYAML's composer recurses per level, so a 50,000-deep list
would end in a bare `RecursionError`), and no anchors or aliases (an alias is a shared
reference, and a few of them nested make a document whose expansion, when it is walked or
dumped again, is exponential: the "billion laughs"). Both are refused as
`yaml.YAMLError`, which the callers already turn into their own clear errors.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import Node

MAX_DEPTH = 32  # BML and job files nest 3-4 levels


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, "anchors and aliases are not allowed here", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Any:
    """Parse one YAML document with the safe loader, at most `MAX_DEPTH` deep, no aliases."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ValueError("TOML nested too deeply") from None


def read_utf8(path: Path) -> str:
    """The file's text; bad UTF-8 is a `UnicodeDecodeError` (a `ValueError`), never replaced."""
    return Path(path).read_bytes().decode("utf-8")
