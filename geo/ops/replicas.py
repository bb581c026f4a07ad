"""Read routing over streaming replicas: reads go to a replica that is up, not too far behind and (for
read-your-writes) has replayed a given WAL position; everything else goes to the primary.

A monitor task per server polls it every ``POLL_S`` (the primary for ``pg_current_wal_lsn()``, each replica for
``pg_last_wal_replay_lsn()``); a server that fails a poll is marked down and polled again, so that a restarted
server comes back without restarting the process. Choosing a server reads only the monitors' last results: a
read costs no extra round trip, except the empty query that tests a replica connection on checkout (a replica
that went away since the last poll is then skipped instead of failing the read).

Replay lag in seconds is measured against the primary's own history: the time since the primary first reported
a WAL position the replica has not replayed yet (0 when it has replayed everything the primary reported).
``pg_last_xact_replay_timestamp()`` would instead grow on a caught-up replica whenever the primary is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from geo.db import as_libpq_url, connect_kwargs, make_read_pool
from geo.errors import InvalidQuery
from geo.settings import Settings

log = logging.getLogger(__name__)
# How long closing waits for the monitors and the replica pools before it gives up on them (seconds).
CLOSE_TIMEOUT_S = 5.0

POLL_S = 0.1  # monitor period per server
# A replica checkout waits this long at most before the read falls back (the primary's pool waits db_timeout_s).
REPLICA_CHECKOUT_TIMEOUT_S = 0.5
PRIMARY = "primary"
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_WAL_PAGE = 8192
_WAL_SEGMENT = 16 * 1024 * 1024
_PAGE_HEADER = 24
_LONG_PAGE_HEADER = 40
_PRIMARY_LSN = "SELECT pg_current_wal_lsn()::text"
# The least position of a read that must go to the primary: above any real one. A write whose position could not
# be read sends its writer's reads there (``READ_PRIMARY`` in api/read_routing.py).
PRIMARY_ONLY_LSN = 2**64 - 1
_HISTORY = 2048  # primary LSN samples kept for lag in seconds (>= 200 s of continuous writes at POLL_S)


def parse_lsn(text: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as a byte position; ``InvalidQuery`` when it is not one."""
    match = _LSN.match(text.strip())
    if not match:
        raise InvalidQuery(f"not a WAL position (expected e.g. 0/16B3748): {text[:40]!r}", param="Dolbom-Min-LSN")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    """A byte position in PostgreSQL's LSN notation."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def settled_lsn(position: int) -> int:
    """``position`` with a WAL page header skipped back over: the primary reports the position after the header
    when its last record ended on a page boundary, while a replica that replayed that record reports the
    boundary; without this a caught-up replica would look behind until the next write."""
    if position % _WAL_SEGMENT == _LONG_PAGE_HEADER:
        return position - _LONG_PAGE_HEADER
    if position % _WAL_PAGE == _PAGE_HEADER:
        return position - _PAGE_HEADER
    return position


@dataclass
class ServerState:
    """What the last poll of one server found."""

    name: str
    up: bool = False
    # Replica: last replayed WAL position; primary: current WAL position.
    lsn: int | None = None
    lag_bytes: int | None = None
    lag_s: float | None = None
    error: str | None = None
    polled_at: float | None = None  # time.monotonic()


@dataclass
class Server:
    """One database server the router reads from: its pool and its monitor's findings."""

    name: str
    url: str
    pool: AsyncConnectionPool
    is_replica: bool
    state: ServerState = field(init=False)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    checking: asyncio.Task[None] | None = None  # a background check of the pool's idle connections

    def __post_init__(self) -> None:
        self.state = ServerState(self.name)


@dataclass(frozen=True)
class Lease:
    """A connection lent by ``ReadRouter.checkout``, its server and the pool it goes back to."""

    conn: psycopg.AsyncConnection[Any]
    server: Server
    pool: AsyncConnectionPool


class ReadRouter:
    """Chooses the server for each read (see the module docstring); ``start()`` opens the replica pools and the
    monitors, ``close()`` stops them. The primary's pool is the caller's (opened and closed by it)."""

    def __init__(self, settings: Settings, *, primary_pool: AsyncConnectionPool, replica_urls: Iterable[str],
                 replica_pool_size: int = 10) -> None:
        self.settings = settings
        self.primary = Server(PRIMARY, settings.effective_database_url, primary_pool, is_replica=False)
        self.replicas = [
            Server(f"replica-{i}", url, make_read_pool(settings, url=url, max_size=replica_pool_size, check=True),
                   is_replica=True)
            for i, url in enumerate(replica_urls, start=1)
        ]
        self._history: deque[tuple[float, int]] = deque(maxlen=_HISTORY)
        self._progress = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._turn = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def servers(self) -> list[Server]:
        """The primary, then the replicas."""
        return [self.primary, *self.replicas]

    async def start(self) -> None:
        """Open the replica pools (without waiting for a server) and start one monitor per server."""
        self._loop = asyncio.get_running_loop()
        for replica in self.replicas:
            await replica.pool.open(wait=False)
        self._tasks = [asyncio.create_task(self._monitor(s), name=f"monitor-{s.name}") for s in self.servers]

    async def close(self) -> None:
        """Stop the monitors and close the replica pools."""
        checks = [s.checking for s in self.servers if s.checking is not None]
        tasks = [*self._tasks, *checks]
        for task in tasks:
            task.cancel()
        # Bounded: a task stuck in a connection attempt that ignores cancellation must not hold the app's
        # shutdown (a worker that never exits); what is left is abandoned with the event loop.
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            for task in done:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
            if pending:
                log.warning("read router: %d monitor task(s) did not stop within %.0f s", len(pending),
                               CLOSE_TIMEOUT_S)
        for replica in self.replicas:
            await replica.pool.close(timeout=CLOSE_TIMEOUT_S)

    # Monitoring ------------------------------------------------------------------------------------------

    async def _monitor(self, server: Server) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        query = ("SELECT pg_last_wal_replay_lsn()::text" if server.is_replica
                 else "SELECT pg_current_wal_lsn()::text")
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect(server)
                    # Bounded: a server behind a dead TCP link would otherwise hold its monitor forever.
                    row = await asyncio.wait_for(self._poll(conn, query), self.settings.database.timeout_s)
                    if not server.state.up and server.state.polled_at is not None:
                        if server.is_replica:
                            await self._renew_pool(server)
                        else:  # the primary's pool is the app's: its dead connections are replaced in place
                            self._check_pool(server)
                    self._record(server, parse_lsn(row) if row else None)
                except Exception as exc:  # whatever fails, the server counts as down and the monitor goes on
                    if server.state.up:
                        log.warning("%s is down: %s", server.name, exc)
                    server.state.up = False
                    server.state.error = str(exc).strip()[:200] or type(exc).__name__
                    server.state.polled_at = time.monotonic()
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                        conn = None
                async with self._progress:
                    self._progress.notify_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wake.wait(), POLL_S)
                server.wake.clear()
        finally:
            if conn is not None:
                await conn.close()

    @staticmethod
    async def _poll(conn: psycopg.AsyncConnection[Any], query: str) -> str | None:
        row = await (await conn.execute(query)).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    async def _renew_pool(self, server: Server) -> None:
        """A fresh pool for a replica that is back: the old one may be waiting out its reconnection backoff
        (seconds) after the failures; connections still lent from it are closed when they are given back."""
        old = server.pool
        server.pool = make_read_pool(self.settings, url=server.url, max_size=old.max_size, check=True)
        await server.pool.open(wait=False)
        await old.close(timeout=0)

    def _record(self, server: Server, lsn: int | None) -> None:
        now = time.monotonic()
        state = server.state
        if not state.up:
            log.info("%s is up", server.name)
        state.up, state.lsn, state.error, state.polled_at = True, lsn, None, now
        if not server.is_replica:
            if lsn is not None and (not self._history or settled_lsn(lsn) > self._history[-1][1]):
                self._history.append((now, settled_lsn(lsn)))
            for replica in self.replicas:
                self._update_lag(replica.state, now)
        else:
            self._update_lag(state, now)

    def _update_lag(self, state: ServerState, now: float) -> None:
        if state.lsn is None or not self._history or not self.primary.state.up:
            state.lag_bytes = state.lag_s = None
            return
        head = self._history[-1][1]
        state.lag_bytes = max(0, head - state.lsn)
        behind = [t for t, lsn in self._history if lsn > state.lsn]
        state.lag_s = now - behind[0] if behind else 0.0

    # Choosing ----------------------------------------------------------------------------------------------

    def _serves(self, replica: Server, min_lsn: int | None) -> bool:
        state = replica.state
        if not state.up or state.lsn is None:
            return False
        if state.lag_s is not None and state.lag_s > self.settings.replicas.max_lag_s:
            return False
        return min_lsn is None or state.lsn >= settled_lsn(min_lsn)

    def eligible(self, min_lsn: int | None = None) -> list[Server]:
        """Replicas that may serve a read needing ``min_lsn`` now, in round-robin order."""
        ready = [r for r in self.replicas if self._serves(r, min_lsn)]
        if len(ready) > 1:
            self._turn = (self._turn + 1) % len(ready)
            ready = ready[self._turn:] + ready[:self._turn]
        return ready

    def choose(self, min_lsn: int | None = None) -> Server:
        """The server for a read right now, without waiting: an eligible replica, else the primary unless it is
        known to be down, else the most advanced replica that is up (stale beats no answer)."""
        ready = self.eligible(min_lsn)
        if ready:
            return ready[0]
        if self.primary.state.up or self.primary.state.polled_at is None:
            return self.primary
        fallback = self._fallback_replicas()
        return fallback[0] if fallback else self.primary

    def _fallback_replicas(self) -> list[Server]:
        up = [r for r in self.replicas if r.state.up]
        return sorted(up, key=lambda r: r.state.lsn or 0, reverse=True)

    async def _wait_for_progress(self, deadline: float) -> None:
        """Wait until a monitor reports (polling the replicas at once) or ``deadline`` passes."""
        for replica in self.replicas:
            replica.wake.set()
        async with self._progress:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), max(0.0, deadline - time.monotonic()))

    def mark_down(self, server: Server) -> None:
        """Count ``server`` as down (a checkout from it failed) until its monitor, woken now, sees it answer
        again. Safe from any thread: sync handlers run in FastAPI's thread pool, and an ``asyncio.Event`` may only
        be set on its own loop."""
        server.state.up = False
        if self._loop is None:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            server.wake.set()
        else:
            self._loop.call_soon_threadsafe(server.wake.set)

    async def _getconn(self, server: Server) -> Lease | None:
        """A connection from ``server``'s pool, or None (the server marked down) when it cannot give one."""
        pool = server.pool
        try:
            return Lease(await pool.getconn(timeout=REPLICA_CHECKOUT_TIMEOUT_S), server, pool)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("%s: no read connection (%s); falling back", server.name, exc)
            self.mark_down(server)
            return None

    async def checkout(self, min_lsn: int | None = None) -> Lease:
        """A read connection (give it back with ``release``): an eligible replica, waiting up to
        ``read_your_writes_wait_ms`` for one to replay ``min_lsn``; else the primary; the primary failing, the
        most advanced replica that answers. Raises only when no server answers."""
        deadline = time.monotonic() + self.settings.replicas.read_your_writes_wait_ms / 1000
        while True:
            for replica in self.eligible(min_lsn):
                if lease := await self._getconn(replica):
                    return lease
            # Worth waiting only for a replica that is up and within the lag limit (it may replay the position).
            waiting = (min_lsn is not None and min_lsn < PRIMARY_ONLY_LSN
                       and any(self._serves(r, None) for r in self.replicas))
            if not waiting or time.monotonic() >= deadline:
                break
            await self._wait_for_progress(deadline)
        primary_error: Exception | None = None
        if self.primary.state.up or self.primary.state.polled_at is None or not self.replicas:
            pool = self.primary.pool
            try:
                return Lease(await pool.getconn(), self.primary, pool)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                primary_error = exc
                self.mark_down(self.primary)
        for replica in self._fallback_replicas():
            if lease := await self._getconn(replica):
                return lease
        if primary_error is not None:
            raise primary_error
        raise psycopg.OperationalError("no database server answers (primary and replicas are down)")

    async def release(self, lease: Lease) -> None:
        """Give a connection from ``checkout`` back to the pool it came from."""
        await lease.pool.putconn(lease.conn)

    @asynccontextmanager
    async def connection(self, min_lsn: int | None = None) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], str]]:
        """``checkout`` as a context manager yielding the connection and the name of its server."""
        lease = await self.checkout(min_lsn)
        try:
            yield lease.conn, lease.server.name
        finally:
            await self.release(lease)

    async def primary_lsn(self) -> int | None:
        """The primary's current WAL position (a write committed before this call is at or before it), or None
        when the primary does not answer (within ``db_timeout_s``, like any request on it).

        A pooled connection that fails may only be one of those a restarted primary left behind (each fails at
        its first use, while the server already answers): the position is then asked on a new connection, so
        that the write that has just committed still gets it, and the pool is checked for more of them."""
        try:
            async with self.primary.pool.connection() as conn:
                row = await (await conn.execute(_PRIMARY_LSN)).fetchone()
            return parse_lsn(row[0]) if row else None
        except PoolTimeout:
            return None
        except psycopg.OperationalError as exc:
            log.warning("primary: pooled connection failed (%s); asking for the position on a new one", exc)
            self._check_pool(self.primary)
        try:
            async with await self._connect(self.primary) as fresh:
                row = await (await fresh.execute(_PRIMARY_LSN)).fetchone()
        except psycopg.OperationalError:
            return None
        return parse_lsn(row[0]) if row else None

    async def _connect(self, server: Server) -> psycopg.AsyncConnection[Any]:
        """A new autocommit connection to ``server``, outside its pool."""
        # connect_kwargs: the primary's URL may be PgBouncer's, where nothing may be prepared.
        return await psycopg.AsyncConnection.connect(
            as_libpq_url(server.url), autocommit=True, connect_timeout=max(1, int(self.settings.database.timeout_s)),
            **connect_kwargs(server.url, self.settings))

    def _check_pool(self, server: Server) -> None:
        """Test ``server``'s idle pooled connections in the background, replacing the dead ones (after a
        restart of the server every one of them is dead, and each would fail one request)."""
        if server.checking is None or server.checking.done():
            server.checking = asyncio.create_task(server.pool.check(), name=f"check-{server.name}")

    def report(self) -> dict[str, Any]:
        """Each server's state for ``/health``: up, WAL position, replay lag, whether it serves reads now."""
        reader = self.choose()
        servers = []
        for server in self.servers:
            state = server.state
            servers.append({
                "name": server.name,
                "role": "replica" if server.is_replica else "primary",
                "up": state.up,
                "lsn": format_lsn(state.lsn) if state.lsn is not None else None,
                **({"replay_lag_s": None if state.lag_s is None else round(state.lag_s, 3),
                    "replay_lag_bytes": state.lag_bytes} if server.is_replica else {}),
                # No error text: /health is public and connection errors name hosts and sockets (they are logged).
                "serves_reads": (server is reader and state.up) or (server.is_replica and self._serves(server, None)),
            })
        return {"servers": servers, "reads_from": reader.name if reader.state.up else None}
