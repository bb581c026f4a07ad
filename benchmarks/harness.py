"""The benchmarks' shared harness: server processes, CPU accounting, statistics and their formatting.

- Servers: a free port, a process started and awaited until it answers (``running_server``), the uvicorn command
  line the benchmarks compare with (``uvicorn_command``), tipg in its own virtualenv (``ensure_tipg``,
  ``asyncpg_url``). Also used by the tests that need a real server process (GDAL clients, the SSE stream across
  two processes, several workers).
- CPU: seconds of a process (``process_cpu_s``) or of a process tree (``tree_cpu_s``).
- Statistics: interpolated quantiles, the spread of per-round figures, latency summaries, ratios within a round
  (timings are reported as ratios against a baseline measured in the same run), and ``median [min-max]``.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.engine import URL, make_url

from geo.settings import PROJECT_ROOT

# ---------------------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------------------


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


def has_module(module: str, python: str | Path = sys.executable) -> bool:
    """True when ``python`` can import ``module``."""
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


def uvicorn_command(python: str | Path, app: str, port: int, *, factory: bool = False,
                    fast: bool = True) -> list[str]:
    """One uvicorn worker on 127.0.0.1:``port`` without access log; ``fast``: httptools + uvloop when the
    environment of ``python`` has them."""
    command = [str(python), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    if factory:
        command.append("--factory")
    if fast and has_module("uvloop", python):
        command += ["--loop", "uvloop"]
    if fast and has_module("httptools", python):
        command += ["--http", "httptools"]
    return command


@dataclass
class Server:
    """A uvicorn process on 127.0.0.1."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(name: str, command: list[str], *, env: Mapping[str, str], ready_path: str, cwd: Path = PROJECT_ROOT,
          timeout_s: float = 60.0) -> Iterator[Server]:
    """Start ``command`` (a uvicorn on ``--port``), wait until ``ready_path`` answers 200, stop it on exit."""
    port = int(command[command.index("--port") + 1])
    with running_server(command, base_url=f"http://127.0.0.1:{port}", ready_path=ready_path, env=env,
                        cwd=cwd, timeout_s=timeout_s) as process:
        yield Server(name, port, process)


def ensure_tipg(venv: Path, packages: Sequence[str] = ("tipg", "uvicorn[standard]")) -> Path:
    """The python of a virtualenv with tipg and uvicorn (created and installed with pip when missing)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not all(has_module(module, python) for module in ("tipg", "uvicorn", "uvloop")):
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def asyncpg_url(url: str | URL) -> str:
    """A SQLAlchemy URL as a DSN tipg (asyncpg) accepts: a unix-socket directory goes into the host,
    percent-encoded (tipg's settings require a host; asyncpg decodes it)."""
    url = make_url(url)
    socket_dir = url.query.get("host")
    host = quote(str(socket_dir), safe="") if socket_dir else (url.host or "127.0.0.1")
    user = quote(url.username or "postgres", safe="")
    password = f":{quote(url.password, safe='')}" if url.password else ""
    port = url.port or url.query.get("port") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{url.database}"


# ---------------------------------------------------------------------------------------------------------
# CPU accounting
# ---------------------------------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process, its reaped children and its live descendants; 0 when gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return float(total)
    except psutil.NoSuchProcess:
        return 0.0


# ---------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------


def timed_ms(fn: Callable[[], Any]) -> float:
    """Milliseconds of wall time ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (``values`` need not be sorted; NaN when empty)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, interquartile range (q1, q3), min and max of per-round figures."""
    return {"median": quantile(values, 0.5), "q1": quantile(values, 0.25), "q3": quantile(values, 0.75),
            "min": min(values), "max": max(values), "rounds": len(values)}


def latency_stats(ms: Sequence[float]) -> dict[str, float]:
    """Count, p50, p99 and mean of request latencies (milliseconds)."""
    return {"n": len(ms), "p50_ms": quantile(ms, 0.5), "p99_ms": quantile(ms, 0.99),
            "mean_ms": statistics.fmean(ms)}


def latency_summary(rounds: list[list[float]]) -> dict[str, Any]:
    """p50/p99 over all requests of all rounds, and the spread of the per-round p50."""
    pooled = [ms for round_ms in rounds for ms in round_ms]
    return {**latency_stats(pooled), "round_p50_ms": spread([quantile(r, 0.5) for r in rounds])}


def ratio_spread(numerator: list[list[float]], denominator: list[list[float]], q: float = 0.5) -> dict[str, float]:
    """The ratio of the ``q`` quantiles, computed within each round, then its spread over rounds."""
    return spread([quantile(n, q) / quantile(d, q) for n, d in zip(numerator, denominator, strict=True)])


def median_range(stats: Mapping[str, float] | None, fmt: str = "{:.2f}") -> str:
    """``median [min-max]`` of a ``spread``; the median alone for one round, ``-`` for none."""
    if not stats or math.isnan(stats["median"]):
        return "-"
    if stats.get("rounds") == 1:
        return fmt.format(stats["median"])
    return f"{fmt.format(stats['median'])} [{fmt.format(stats['min'])}-{fmt.format(stats['max'])}]"


def median_range_iqr(stats: Mapping[str, float], fmt: str = "{:.2f}") -> str:
    """``median [min-max] (IQR q1-q3)`` of a ``spread``."""
    return (f"{fmt.format(stats['median'])} [{fmt.format(stats['min'])}-{fmt.format(stats['max'])}] "
            f"(IQR {fmt.format(stats['q1'])}-{fmt.format(stats['q3'])})")
