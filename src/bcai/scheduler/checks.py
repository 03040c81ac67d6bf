"""Field checks shared by the scheduler's records; each raises the caller's error class."""

from __future__ import annotations


def is_count(value: object) -> bool:
    """A non-negative int (bools excluded: `True` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_count(error: type[Exception], field: str, value: object) -> None:
    if not is_count(value):
        raise error(f"{field} must be a non-negative integer, got {value!r}")


def check_name(error: type[Exception], field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise error(f"{field} must be a non-empty string, got {value!r}")
