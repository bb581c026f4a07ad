"""The file sink holds phone numbers: its file is 0600 and its directory 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from geo.booking.notify import FileSink, Message


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable (the common 022 and worse)."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_sink_file_is_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "outbox" / "sms-outbox.jsonl"
    FileSink(path).send(Message(id=1, idempotency_key="k1", recipient="010-1234-5678", body="예약되었습니다"))
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert "010-1234-5678" in path.read_text(encoding="utf-8")


def test_existing_world_readable_sink_is_narrowed(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "sms-outbox.jsonl"
    path.write_text("", encoding="utf-8")
    path.chmod(0o644)
    sink = FileSink(path)
    sink.send(Message(id=1, idempotency_key="k1", recipient="010-1234-5678", body="a"))
    sink.send(Message(id=2, idempotency_key="k1", recipient="010-1234-5678", body="a"))  # the same key: once
    assert _mode(path) == 0o600
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1
