"""Notification delivery: exactly once to the file sink across a worker killed mid-send (a real subprocess),
retries with backoff and delivery status, the HTTP gateway adapter's Idempotency-Key, templates in 4 languages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from geo.booking.notify import FileSink, HttpSmsGateway, Message, SendError, backoff, deliver_one, run_worker
from geo.booking.outbox import enqueue
from geo.booking.templates import LANGS, TEMPLATES, render
from geo.settings import PROJECT_ROOT, Settings

N_MESSAGES = 6


@pytest.fixture(scope="module")
def notify_engine(make_database) -> Engine:  # type: ignore[no-untyped-def]
    """A database of its own: the worker subprocess sees only committed rows."""
    return make_database("booking_notify")  # type: ignore[no-any-return]


def _sink_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _worker(engine: Engine, sink: Path, *, ack_delay_s: float, once: bool) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "DOLBOM_NOTIFY_PROVIDER": "file", "DOLBOM_NOTIFY_FILE": str(sink),
           "DOLBOM_NOTIFY_FILE_ACK_DELAY_S": str(ack_delay_s), "DOLBOM_NOTIFY_LEASE_S": "1"}
    args = [sys.executable, "-m", "geo.cli", "notify", "worker", "--poll-s", "0.2"] + (["--once"] if once else [])
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_exactly_once_across_a_killed_worker(notify_engine: Engine, tmp_path: Path) -> None:
    sink = tmp_path / "sms.jsonl"
    with notify_engine.begin() as conn:
        conn.execute(text("DELETE FROM notification_outbox"))
        for i in range(N_MESSAGES):
            enqueue(conn, key=f"test:{i}", recipient=f"010-0000-{i:04d}", lang=LANGS[i % 4], template="booked",
                    centre="해오름어린이집", when="2026-10-03 08:00-20:00", booking_id=i)
    # The first worker acknowledges slowly: it is killed after the sink has the message, before it marks it sent.
    first = _worker(notify_engine, sink, ack_delay_s=30.0, once=False)
    try:
        deadline = time.monotonic() + 60
        while not _sink_lines(sink):
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the worker never sent"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    with notify_engine.connect() as conn:
        in_flight = conn.execute(text("SELECT idempotency_key, status, attempts FROM notification_outbox "
                                      "WHERE attempts > 0")).all()
    assert len(in_flight) == 1 and in_flight[0].status == "pending"
    assert [line["idempotency_key"] for line in _sink_lines(sink)] == [in_flight[0].idempotency_key]
    # Wait for the dead worker's lease (1 s) to pass, then a fresh worker drains the outbox.
    while True:
        with notify_engine.connect() as conn:
            if conn.execute(text("SELECT bool_and(locked_until IS NULL OR locked_until < now()) "
                                 "FROM notification_outbox")).scalar_one():
                break
        time.sleep(0.2)
    second = _worker(notify_engine, sink, ack_delay_s=0.0, once=True)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err.decode()
    lines = _sink_lines(sink)
    keys = [line["idempotency_key"] for line in lines]
    with notify_engine.connect() as conn:
        rows = conn.execute(text("SELECT idempotency_key, recipient, body, status, attempts, sent_at "
                                 "FROM notification_outbox ORDER BY id")).all()
    assert sorted(keys) == sorted(r.idempotency_key for r in rows) and len(set(keys)) == N_MESSAGES
    by_key = {line["idempotency_key"]: line for line in lines}
    for row in rows:
        assert row.status == "sent" and row.sent_at is not None
        assert by_key[row.idempotency_key]["body"] == row.body and by_key[row.idempotency_key]["to"] == row.recipient
    assert {r.idempotency_key: r.attempts for r in rows}[in_flight[0].idempotency_key] == 2


class Flaky:
    """Fails ``failures`` times, then delivers; records every call."""

    def __init__(self, failures: int, *, permanent: bool = False) -> None:
        self.failures, self.permanent, self.calls = failures, permanent, 0

    def send(self, message: Message) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise SendError("gateway down", permanent=self.permanent)
        return f"id-{message.id}"


def test_retries_with_backoff_then_failed(notify_engine: Engine, settings: Settings) -> None:
    fast = settings.updated(DOLBOM_NOTIFY_BACKOFF_S=0.0, DOLBOM_NOTIFY_MAX_ATTEMPTS=3)
    with notify_engine.begin() as conn:
        conn.execute(text("DELETE FROM notification_outbox"))
        enqueue(conn, key="retry:1", recipient="010-1", lang="en", template="confirmed", centre="C",
                when="w", booking_id=1)
    flaky = Flaky(2)
    assert run_worker(notify_engine, fast, provider=flaky, once=True) == 3
    with notify_engine.connect() as conn:
        row = conn.execute(text("SELECT status, attempts, provider_message_id FROM notification_outbox")).one()
    assert (row.status, row.attempts, flaky.calls) == ("sent", 3, 3)
    # Always failing: failed after max attempts, with the last error kept.
    with notify_engine.begin() as conn:
        conn.execute(text("DELETE FROM notification_outbox"))
        enqueue(conn, key="retry:2", recipient="010-2", lang="ko", template="confirmed", centre="C",
                when="w", booking_id=2)
    assert run_worker(notify_engine, fast, provider=Flaky(99), once=True) == 3
    # With a real backoff the next attempt waits: one attempt, then nothing is due.
    with notify_engine.begin() as conn:
        enqueue(conn, key="retry:3", recipient="010-3", lang="ko", template="confirmed", centre="C",
                when="w", booking_id=3)
    slow = settings.updated(DOLBOM_NOTIFY_BACKOFF_S=60.0)
    assert deliver_one(notify_engine, Flaky(1), slow) is True
    assert deliver_one(notify_engine, Flaky(0), slow) is False
    with notify_engine.connect() as conn:
        rows = {r.idempotency_key: r for r in conn.execute(text(
            "SELECT idempotency_key, status, attempts, last_error, next_attempt_at - now() AS wait "
            "FROM notification_outbox")).all()}
    assert (rows["retry:2"].status, rows["retry:2"].attempts, rows["retry:2"].last_error) == ("failed", 3,
                                                                                            "gateway down")
    assert rows["retry:3"].status == "pending" and 50 < rows["retry:3"].wait.total_seconds() <= 60
    assert [backoff(a, base_s=10).total_seconds() for a in (1, 2, 3, 20)] == [10, 20, 40, 3600]


def test_http_gateway_sends_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    answers = iter([httpx.Response(503), httpx.Response(200, json={"id": "gw-1"}), httpx.Response(400, text="bad")])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    gateway = HttpSmsGateway(url="http://127.0.0.1:9/sms", api_key="k", sender="dolbom", timeout_s=1,
                             transport=httpx.MockTransport(handler))
    message = Message(id=1, idempotency_key="booking:1:booked", recipient="010-1234-5678", body="안녕")
    with pytest.raises(SendError) as retry:
        gateway.send(message)
    assert not retry.value.permanent
    assert gateway.send(message) == "gw-1"
    with pytest.raises(SendError) as refused:
        gateway.send(message)
    assert refused.value.permanent
    assert {r.headers["Idempotency-Key"] for r in seen} == {"booking:1:booked"}
    assert seen[1].headers["Authorization"] == "Bearer k"
    assert json.loads(seen[1].content) == {"from": "dolbom", "to": "010-1234-5678", "text": "안녕"}


def test_file_sink_delivers_a_key_once(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "s.jsonl")
    message = Message(id=1, idempotency_key="k1", recipient="010", body="b")
    assert sink.send(message) == sink.send(message)
    assert len(_sink_lines(tmp_path / "s.jsonl")) == 1


def test_templates_cover_four_languages() -> None:
    params = {"centre": "C", "when": "W", "booking_id": 7, "position": 2, "phone": "02",
              "place": "P", "distance_km": "0.5", "age": 1, "free": 2, "link": "L"}  # alert_vacancy (geo.alerts)
    for template, texts in TEMPLATES.items():
        assert set(texts) == set(LANGS)
        rendered = {render(template, lang, **params) for lang in LANGS}
        assert len(rendered) == 4, template
