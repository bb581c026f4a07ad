"""Issue #20 against a real server (``dolbom serve`` under uvicorn, as deployed): a 300 MB body is refused 413
before it is read (the worker's memory stays flat), and the login throttle cannot be dodged with
``X-Forwarded-For`` unless the operator names the proxy."""

from __future__ import annotations

import os
import select
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, text

from benchmarks.harness import free_port, running_server

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
BODY_BYTES = 300 * MIB
CHUNK = b"a" * (64 * 1024)  # one object, sent again and again: the test never holds the body
DOLBOM = str(Path(sys.executable).with_name("dolbom"))


@contextmanager
def dolbom_serve(database_url: str, **env: str) -> Iterator[tuple[str, int]]:
    """``dolbom serve`` on a free port; yields (base URL, server process id)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "DATABASE_URL": database_url, **env}
    full_env.pop("FORWARDED_ALLOW_IPS", None)
    with running_server([DOLBOM, "serve", "--host", "127.0.0.1", "--port", str(port)], base_url=base,
                        ready_path="/ogc/conformance", env=full_env) as process:
        yield base, process.pid


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (bytes), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def stream_post(base: str, path: str, *, chunked: bool) -> tuple[int, bytes, int]:
    """POST a 300 MB body generated as it is sent, stopping as soon as the server answers.

    Returns (status, response bytes, body bytes sent)."""
    url = urlsplit(base)
    head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Content-Type: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}")
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" if chunked else CHUNK
    sent = 0
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        prefix = b'{"email": "'
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode()
                     + (f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n" if chunked else prefix))
        while sent < BODY_BYTES:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_300_mb_login_body_is_413_with_memory_flat(test_database_url: str, engine: Engine, chunked: bool) -> None:
    with dolbom_serve(test_database_url) as (base, pid):
        for _ in range(3):  # warm: the first requests import and build what every later one uses
            httpx.post(base + "/auth/login", json={"email": "warm@example.kr", "password": "x"}, timeout=30)
        before = rss_bytes(pid)
        status, answer, sent = stream_post(base, "/auth/login", chunked=chunked)
        after = rss_bytes(pid)
        print(f"RSS before {before / MIB:.1f} MiB, after {after / MIB:.1f} MiB; sent {sent / MIB:.1f} MiB "
              f"of {BODY_BYTES / MIB:.0f} MiB ({'chunked' if chunked else 'Content-Length'})")
        assert status == 413, answer[:500]
        assert b"application/problem+json" in answer and b'"status": 413' in answer
        assert after - before < 50 * MIB
        assert sent < 64 * MIB  # refused long before the end, not after reading it all
        # The server still answers.
        assert httpx.get(base + "/ogc/conformance", timeout=30).status_code == 200
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_failures WHERE email = 'warm@example.kr'"))


def _fail_logins(base: str, emails: list[str]) -> list[int]:
    """One wrong-password login per e-mail, each naming another client address in X-Forwarded-For."""
    with httpx.Client(base_url=base, timeout=30) as client:
        return [client.post("/auth/token", json={"email": email, "password": "wrong password"},
                            headers={"X-Forwarded-For": f"203.0.113.{i % 250 + 1}"}).status_code
                for i, email in enumerate(emails)]


def test_forwarded_for_does_not_dodge_the_login_throttle(test_database_url: str, engine: Engine) -> None:
    emails = [f"guess{i}@spoof.example.kr" for i in range(12)]
    try:
        # Default: X-Forwarded-For is nobody's word; the 10 failures all count for 127.0.0.1, and a guessed
        # account gets no second try from there, whatever address the header names.
        with dolbom_serve(test_database_url, DOLBOM_LOGIN_IP_MAX_FAILURES="10") as (base, _):
            assert _fail_logins(base, emails[:10]) == [401] * 10
            assert _fail_logins(base, emails[:3]) == [429] * 3
            # The account limit counts from every address (5 by default).
            assert _fail_logins(base, [emails[11]] * 6)[-1] == 429
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM login_failures WHERE email LIKE '%@spoof.example.kr'"))
        # With the proxy named (uvicorn's old default trusted 127.0.0.1), the header is believed: every request
        # is another address, so retries are not refused by address; the account limit still holds.
        with dolbom_serve(test_database_url, DOLBOM_LOGIN_IP_MAX_FAILURES="10",
                          DOLBOM_FORWARDED_ALLOW_IPS="127.0.0.1") as (base, _):
            assert _fail_logins(base, emails[:10]) == [401] * 10
            assert _fail_logins(base, emails[:3]) == [401] * 3
            assert _fail_logins(base, [emails[11]] * 6)[-1] == 429
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM login_failures WHERE email LIKE '%@spoof.example.kr'"))
