"""YAML documents from people and from the chain (BML, job files), read without surprises.

`load_yaml(text)` is `yaml.safe_load` with two limits that PyYAML does not have: nesting
at most `MAX_DEPTH` levels (PyYAML's composer recurses per level, so a 50,000-deep list
would end in a bare `RecursionError`), and no anchors or aliases (an alias is a shared
reference, and a few of them nested make a document whose expansion, when it is walked or
dumped again, is exponential: the "billion laughs"). Both are refused as
`yaml.YAMLError`, which the callers already turn into their own clear errors.
"""

from __future__ import annotations

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
