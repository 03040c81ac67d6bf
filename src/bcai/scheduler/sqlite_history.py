"""The SQLite backend of the assignment history (the shell part: it touches disk).

One table, `task_assignments(task_id, node_id, assigned_at, disconnected_at)`, primary
key (task_id, node_id): a node has at most one row per task, reactivated in place. A
partial index over active rows keeps the per-node cap check cheap. Each public operation
runs in one `BEGIN IMMEDIATE` transaction, so two processes sharing the file cannot both
take the last free slot of a task.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bcai.scheduler.history import AssignmentHistory, AssignmentRow, _check_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_assignments (
    task_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    assigned_at INTEGER NOT NULL,
    disconnected_at INTEGER,
    PRIMARY KEY (task_id, node_id)
);
CREATE INDEX IF NOT EXISTS task_assignments_active_node
    ON task_assignments (node_id) WHERE disconnected_at IS NULL;
"""


class SqliteAssignmentHistory(AssignmentHistory):
    """Assignment history in a SQLite file (or `":memory:"`)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None)
        if str(path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth -= 1

    def _get_row(self, task_id: str, node_id: str) -> AssignmentRow | None:
        found = self._conn.execute(
            "SELECT task_id, node_id, assigned_at, disconnected_at FROM task_assignments"
            " WHERE task_id = ? AND node_id = ?",
            (task_id, node_id),
        ).fetchone()
        return AssignmentRow(*found) if found is not None else None

    def _put_row(self, row: AssignmentRow) -> None:
        self._conn.execute(
            "INSERT INTO task_assignments (task_id, node_id, assigned_at, disconnected_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (task_id, node_id) DO UPDATE SET"
            " assigned_at = excluded.assigned_at, disconnected_at = excluded.disconnected_at",
            (row.task_id, row.node_id, row.assigned_at, row.disconnected_at),
        )

    def get_rows(self, task_id: str) -> tuple[AssignmentRow, ...]:
        _check_id("task_id", task_id)
        rows = self._conn.execute(
            "SELECT task_id, node_id, assigned_at, disconnected_at FROM task_assignments"
            " WHERE task_id = ? ORDER BY node_id",
            (task_id,),
        ).fetchall()
        return tuple(AssignmentRow(*r) for r in rows)

    def count_active_for_node(self, node_id: str) -> int:
        _check_id("node_id", node_id)
        (count,) = self._conn.execute(
            "SELECT COUNT(*) FROM task_assignments WHERE node_id = ? AND disconnected_at IS NULL", (node_id,)
        ).fetchone()
        return int(count)
