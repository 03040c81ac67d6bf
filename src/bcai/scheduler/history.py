"""Assignment history: which node worked on which task, and when it let go (seed 003).

Rules (each has a test in tests/scheduler/test_scheduler_history.py, run against both
implementations):

- a row is active while `disconnected_at` is None;
- `attach_nodes` attaches, in the order given, only as many nodes as the task still needs
  (`min_nodes` minus its active rows), skips nodes already active on the task and nodes
  at the per-node cap; attaching a node whose row is disconnected reactivates that row
  (`assigned_at` = now, `disconnected_at` = None) instead of adding a second one;
- `disconnect_task` (the task finished) sets `disconnected_at` on the task's active rows
  and never deletes a row; `disconnect_node` does it for one node (it left or died, so
  its share can be redistributed).

`AssignmentHistory` holds the rules; a backend supplies five storage primitives and a
transaction. `InMemoryAssignmentHistory` is the reference backend, `SqliteAssignmentHistory`
(in `sqlite_history.py`) the persistent one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

from bcai.errors import InvalidAssignment
from bcai.scheduler.checks import check_name


@dataclass(frozen=True)
class AssignmentRow:
    task_id: str
    node_id: str
    assigned_at: int
    disconnected_at: int | None = None

    @property
    def is_active(self) -> bool:
        return self.disconnected_at is None


def _check_id(field: str, value: object) -> None:
    check_name(InvalidAssignment, field, value)


def _check_positive(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidAssignment(f"{field} must be a positive integer, got {value!r}")


def _check_time(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidAssignment(f"now must be a non-negative integer (Unix seconds), got {value!r}")


class AssignmentHistory(ABC):
    """The assignment rules over a storage backend."""

    # --- storage primitives a backend provides -----------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """All-or-nothing scope for one public operation."""

    @abstractmethod
    def _get_row(self, task_id: str, node_id: str) -> AssignmentRow | None: ...

    @abstractmethod
    def _put_row(self, row: AssignmentRow) -> None:
        """Insert the row, or replace the one with the same (task_id, node_id)."""

    @abstractmethod
    def get_rows(self, task_id: str) -> tuple[AssignmentRow, ...]:
        """Every row of the task, active or not, ordered by node id."""

    @abstractmethod
    def count_active_for_node(self, node_id: str) -> int: ...

    # --- the rules ------------------------------------------------------------------

    def get_active_nodes(self, task_id: str) -> tuple[str, ...]:
        """Node ids active on the task, ascending."""
        _check_id("task_id", task_id)
        return tuple(r.node_id for r in self.get_rows(task_id) if r.is_active)

    def count_active_for_task(self, task_id: str) -> int:
        return len(self.get_active_nodes(task_id))

    def attach_nodes(
        self, task_id: str, node_ids: Sequence[str], *, min_nodes: int, max_tasks_per_node: int, now: int
    ) -> tuple[str, ...]:
        """Attach nodes in the given order until the task has `min_nodes` active; returns those attached."""
        _check_id("task_id", task_id)
        if isinstance(node_ids, str):
            raise InvalidAssignment("node_ids must be a sequence of ids, not one string")
        for node_id in node_ids:
            _check_id("node_id", node_id)
        _check_positive("min_nodes", min_nodes)
        _check_positive("max_tasks_per_node", max_tasks_per_node)
        _check_time(now)
        attached: list[str] = []
        with self._transaction():
            needed = min_nodes - self.count_active_for_task(task_id)
            for node_id in node_ids:
                if needed <= 0:
                    break
                row = self._get_row(task_id, node_id)
                # Already active on this task: nothing to do.
                if row is not None and row.is_active:
                    continue
                # The node holds as many active assignments as it may.
                if self.count_active_for_node(node_id) >= max_tasks_per_node:
                    continue
                # New row, or reactivation of the disconnected one (never a second row).
                self._put_row(AssignmentRow(task_id, node_id, now, None))
                attached.append(node_id)
                needed -= 1
        return tuple(attached)

    def disconnect_task(self, task_id: str, *, now: int) -> tuple[str, ...]:
        """Disconnect every active row of the task (it finished); returns the nodes released."""
        _check_id("task_id", task_id)
        _check_time(now)
        with self._transaction():
            active = [r for r in self.get_rows(task_id) if r.is_active]
            for row in active:
                self._put_row(replace(row, disconnected_at=now))
        return tuple(r.node_id for r in active)

    def disconnect_node(self, task_id: str, node_id: str, *, now: int) -> bool:
        """Disconnect one node from the task; False when it was not active there."""
        _check_id("task_id", task_id)
        _check_id("node_id", node_id)
        _check_time(now)
        with self._transaction():
            row = self._get_row(task_id, node_id)
            if row is None or not row.is_active:
                return False
            self._put_row(replace(row, disconnected_at=now))
            return True


class InMemoryAssignmentHistory(AssignmentHistory):
    """The reference backend: a dict, snapshotted for rollback."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], AssignmentRow] = {}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        snapshot = dict(self._rows)
        try:
            yield
        except BaseException:
            self._rows = snapshot
            raise

    def _get_row(self, task_id: str, node_id: str) -> AssignmentRow | None:
        return self._rows.get((task_id, node_id))

    def _put_row(self, row: AssignmentRow) -> None:
        self._rows[(row.task_id, row.node_id)] = row

    def get_rows(self, task_id: str) -> tuple[AssignmentRow, ...]:
        _check_id("task_id", task_id)
        return tuple(sorted((r for (t, _), r in self._rows.items() if t == task_id), key=lambda r: r.node_id))

    def count_active_for_node(self, node_id: str) -> int:
        _check_id("node_id", node_id)
        return sum(1 for (_, n), r in self._rows.items() if n == node_id and r.is_active)
