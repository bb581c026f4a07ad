"""The watcher's rank check over hand-written logs: rank events that follow from the log pass; a ranked stranger,
a left-out entry and a reordering with no logged reason are each named; a verification or a status change is a
reason."""

from __future__ import annotations

from typing import Any

from geo.watch.ranks import LoggedEvent, rank_mismatches


def _log(*events: dict[str, Any]) -> list[LoggedEvent]:
    return [LoggedEvent(i, "C1", i + 1, e) for i, e in enumerate(events)]


def _apply(entry: str, child: str) -> dict[str, Any]:
    return {"type": "apply", "entry": entry, "child": child, "year": 2026, "age_class": 0, "status": "waiting"}


def _rank(*order: str) -> dict[str, Any]:
    return {"type": "rank", "year": 2026, "age_class": 0, "order": list(order)}


def test_a_log_that_justifies_its_ranks() -> None:
    assert rank_mismatches(_log(_apply("a", "ka"), _rank("a"), _apply("b", "kb"), _rank("a", "b"),
                                _apply("c", "kc"), _rank("c", "a", "b"),  # a new entry may go anywhere
                                {"type": "verify", "child": "kb", "category": "dual_income"}, _rank("b", "c", "a"),
                                {"type": "withdraw", "entry": "c", "status": "withdrawn"}, _rank("b", "a"))) == []


def test_strangers_missing_entries_and_unexplained_moves() -> None:
    found = rank_mismatches(_log(_apply("a", "ka"), _apply("b", "kb"), _rank("a", "b"), _rank("b", "a"),
                                 _rank("a", "x")))
    assert [(m.index, m.reason.split(":")[0]) for m in found] == [
        (3, "reorders entries with no logged reason (no verification or status change)"),
        (4, "ranks entries the log does not have waiting in this queue"),
        (4, "leaves out entries the log has waiting in this queue")]
    moved = rank_mismatches(_log(_apply("a", "ka"), _apply("b", "kb"), _rank("a", "b"), _apply("c", "kc"),
                                 _rank("b", "c", "a")))
    assert [m.index for m in moved] == [4] and moved[0].queue == (2026, 0)
