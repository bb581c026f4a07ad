"""Start a web server process on 127.0.0.1, wait until it answers, stop it afterwards.

Shared by the benchmarks (dolbom and tipg side by side) and by the tests that need a real server process
(GDAL clients, the SSE stream across two processes).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from geo.settings import PROJECT_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(command: list[str], *, base_url: str, ready_path: str, env: Mapping[str, str],
                   cwd: Path = PROJECT_ROOT, timeout_s: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; enter once ``base_url + ready_path`` answers 200.

    Parameters
    ----------
    command
        The server's command line (it must listen where ``base_url`` says).
    base_url
        ``http://127.0.0.1:<port>`` of the server.
    ready_path
        Path that answers 200 once the server is ready.
    env
        The process environment (complete: not merged with ``os.environ`` here).
    cwd
        Working directory of the process.
    timeout_s
        How long to wait for the first 200 before giving up (a hang guard, not a measurement).

    Raises
    ------
    RuntimeError
        The process exited before it answered (with the tail of its stderr), or it did not answer in time.
    """
    # stderr goes to a file, not a pipe: nobody reads it while the server runs, and a full pipe would block it.
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    stderr.seek(0)
                    tail = stderr.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"{command[:4]} exited with {process.returncode}: {tail}")
                try:
                    if httpx.get(base_url + ready_path, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not answer {ready_path} within {timeout_s:.0f} s")
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
