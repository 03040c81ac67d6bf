"""One test class, both backends (STYLE 7): every assignment-history rule of seed 003."""

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai.errors import InvalidAssignment
from bcai.scheduler import AssignmentRow, InMemoryAssignmentHistory, SqliteAssignmentHistory


@pytest.fixture(params=["memory", "sqlite"])
def history(request, tmp_path):
    if request.param == "memory":
        yield InMemoryAssignmentHistory()
    else:
        h = SqliteAssignmentHistory(tmp_path / "assignments.db")
        yield h
        h.close()


class TestAssignmentHistory:
    def test_attach_creates_active_rows(self, history):
        assert history.attach_nodes("t1", ["a", "b"], min_nodes=2, max_tasks_per_node=50, now=10) == ("a", "b")
        assert history.get_rows("t1") == (AssignmentRow("t1", "a", 10), AssignmentRow("t1", "b", 10))
        assert history.get_active_nodes("t1") == ("a", "b")
        assert history.count_active_for_task("t1") == 2

    def test_never_attaches_more_than_min_nodes(self, history):
        assert history.attach_nodes("t1", ["a", "b", "c"], min_nodes=2, max_tasks_per_node=50, now=1) == ("a", "b")
        assert history.attach_nodes("t1", ["c", "d"], min_nodes=2, max_tasks_per_node=50, now=2) == ()
        assert history.get_active_nodes("t1") == ("a", "b")

    def test_tops_up_to_min_nodes(self, history):
        history.attach_nodes("t1", ["a"], min_nodes=3, max_tasks_per_node=50, now=1)
        assert history.attach_nodes("t1", ["a", "b", "c", "d"], min_nodes=3, max_tasks_per_node=50, now=2) == ("b", "c")

    def test_active_node_is_not_attached_twice(self, history):
        history.attach_nodes("t1", ["a"], min_nodes=2, max_tasks_per_node=50, now=1)
        assert history.attach_nodes("t1", ["a", "a"], min_nodes=2, max_tasks_per_node=50, now=2) == ()
        assert history.get_rows("t1") == (AssignmentRow("t1", "a", 1),)

    def test_per_node_cap_counts_active_rows_only(self, history):
        history.attach_nodes("t1", ["a"], min_nodes=1, max_tasks_per_node=2, now=1)
        history.attach_nodes("t2", ["a"], min_nodes=1, max_tasks_per_node=2, now=1)
        assert history.attach_nodes("t3", ["a", "b"], min_nodes=1, max_tasks_per_node=2, now=1) == ("b",)
        assert history.count_active_for_node("a") == 2
        history.disconnect_task("t1", now=5)
        assert history.count_active_for_node("a") == 1
        assert history.attach_nodes("t4", ["a"], min_nodes=1, max_tasks_per_node=2, now=6) == ("a",)

    def test_finishing_a_task_disconnects_and_never_deletes(self, history):
        history.attach_nodes("t1", ["a", "b"], min_nodes=2, max_tasks_per_node=50, now=1)
        assert history.disconnect_task("t1", now=9) == ("a", "b")
        assert history.get_rows("t1") == (AssignmentRow("t1", "a", 1, 9), AssignmentRow("t1", "b", 1, 9))
        assert history.get_active_nodes("t1") == ()
        assert history.disconnect_task("t1", now=12) == ()  # already disconnected rows keep their time
        assert history.get_rows("t1")[0].disconnected_at == 9

    def test_disconnect_task_touches_only_that_task(self, history):
        history.attach_nodes("t1", ["a"], min_nodes=1, max_tasks_per_node=50, now=1)
        history.attach_nodes("t2", ["a"], min_nodes=1, max_tasks_per_node=50, now=1)
        history.disconnect_task("t1", now=3)
        assert history.get_active_nodes("t2") == ("a",)

    def test_reattachment_reactivates_the_disconnected_row(self, history):
        history.attach_nodes("t1", ["a"], min_nodes=1, max_tasks_per_node=50, now=1)
        history.disconnect_task("t1", now=5)
        assert history.attach_nodes("t1", ["a"], min_nodes=1, max_tasks_per_node=50, now=7) == ("a",)
        assert history.get_rows("t1") == (AssignmentRow("t1", "a", 7, None),)

    def test_disconnect_node_frees_a_slot_for_a_replacement(self, history):
        history.attach_nodes("t1", ["a", "b"], min_nodes=2, max_tasks_per_node=50, now=1)
        assert history.disconnect_node("t1", "a", now=4)
        assert not history.disconnect_node("t1", "a", now=5)
        assert not history.disconnect_node("t1", "zz", now=5)
        assert history.attach_nodes("t1", ["c"], min_nodes=2, max_tasks_per_node=50, now=6) == ("c",)
        assert history.get_rows("t1") == (
            AssignmentRow("t1", "a", 1, 4), AssignmentRow("t1", "b", 1, None), AssignmentRow("t1", "c", 6, None),
        )

    def test_unknown_task_has_no_rows(self, history):
        assert history.get_rows("nope") == ()
        assert history.count_active_for_node("nobody") == 0

    @pytest.mark.parametrize(
        "call",
        [
            lambda h: h.attach_nodes("", ["a"], min_nodes=1, max_tasks_per_node=1, now=1),
            lambda h: h.attach_nodes("t", ["a", ""], min_nodes=1, max_tasks_per_node=1, now=1),
            lambda h: h.attach_nodes("t", "ab", min_nodes=1, max_tasks_per_node=1, now=1),
            lambda h: h.attach_nodes("t", ["a"], min_nodes=0, max_tasks_per_node=1, now=1),
            lambda h: h.attach_nodes("t", ["a"], min_nodes=1, max_tasks_per_node=0, now=1),
            lambda h: h.attach_nodes("t", ["a"], min_nodes=1, max_tasks_per_node=1, now=-1),
            lambda h: h.attach_nodes("t", ["a"], min_nodes=1, max_tasks_per_node=1, now=1.5),
            lambda h: h.disconnect_task("t", now=-2),
            lambda h: h.disconnect_node("t", 7, now=2),
            lambda h: h.get_rows(None),
        ],
    )
    def test_invalid_history_input_is_rejected_and_changes_nothing(self, history, call):
        history.attach_nodes("t", ["x"], min_nodes=2, max_tasks_per_node=5, now=1)
        before = history.get_rows("t")
        with pytest.raises(InvalidAssignment):
            call(history)
        assert history.get_rows("t") == before


def test_sqlite_history_persists_across_reopen(tmp_path):
    path = tmp_path / "a.db"
    h = SqliteAssignmentHistory(path)
    h.attach_nodes("t1", ["a", "b"], min_nodes=2, max_tasks_per_node=50, now=3)
    h.disconnect_node("t1", "b", now=4)
    h.close()
    again = SqliteAssignmentHistory(path)
    assert again.get_rows("t1") == (AssignmentRow("t1", "a", 3), AssignmentRow("t1", "b", 3, 4))
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM task_assignments").fetchone()
    assert rows == (2,)
    again.close()


def test_a_failed_operation_rolls_back_in_both_backends(tmp_path):
    for history in (InMemoryAssignmentHistory(), SqliteAssignmentHistory(tmp_path / "r.db")):
        original = history._put_row
        calls = []

        def failing_put(row, original=original, calls=calls):
            calls.append(row)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            original(row)

        history._put_row = failing_put
        with pytest.raises(RuntimeError):
            history.attach_nodes("t1", ["a", "b"], min_nodes=2, max_tasks_per_node=5, now=1)
        assert history.get_rows("t1") == ()


def test_two_handles_on_one_sqlite_file_share_the_limits(tmp_path):
    path = tmp_path / "shared.db"
    first, second = SqliteAssignmentHistory(path), SqliteAssignmentHistory(path)
    assert first.attach_nodes("t1", ["a"], min_nodes=1, max_tasks_per_node=1, now=1) == ("a",)
    assert second.attach_nodes("t1", ["b"], min_nodes=1, max_tasks_per_node=1, now=2) == ()  # task full
    assert second.attach_nodes("t2", ["a", "b"], min_nodes=1, max_tasks_per_node=1, now=2) == ("b",)  # a at cap
    first.close()
    second.close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("attach"), st.sampled_from(["t1", "t2", "t3"]), st.lists(st.sampled_from("abcde"), max_size=5)),
        st.tuples(st.just("finish"), st.sampled_from(["t1", "t2", "t3"]), st.just([])),
        st.tuples(st.just("drop"), st.sampled_from(["t1", "t2", "t3"]), st.lists(st.sampled_from("abcde"), min_size=1, max_size=1)),
    ),
    max_size=25,
)
MIN_NODES = {"t1": 1, "t2": 2, "t3": 3}


@settings(max_examples=40, deadline=None)
@given(operations)
def test_backends_agree_and_keep_the_invariants(ops):
    memory, sql = InMemoryAssignmentHistory(), SqliteAssignmentHistory(":memory:")
    seen: set[tuple[str, str]] = set()
    for now, (op, task, nodes) in enumerate(ops):
        results = []
        for h in (memory, sql):
            if op == "attach":
                results.append(h.attach_nodes(task, nodes, min_nodes=MIN_NODES[task], max_tasks_per_node=2, now=now))
            elif op == "finish":
                results.append(h.disconnect_task(task, now=now))
            else:
                results.append(h.disconnect_node(task, nodes[0], now=now))
        assert results[0] == results[1]
        for task_id, minimum in MIN_NODES.items():
            rows = memory.get_rows(task_id)
            assert rows == sql.get_rows(task_id)
            assert sum(r.is_active for r in rows) <= minimum  # never over-attached
            seen |= {(task_id, r.node_id) for r in rows}
            assert {(task_id, r.node_id) for r in rows} == {s for s in seen if s[0] == task_id}  # never deleted
        for node in "abcde":
            assert memory.count_active_for_node(node) == sql.count_active_for_node(node) <= 2
    sql.close()
