"""Many Server-Sent Events clients in one process, cheaply: raw asyncio connections, no HTTP library.

Used by ``bench_vacancy`` (one or more of these processes beside the API workers, so that parsing 10,000 streams
does not share the benchmark's own event loop). Run as
``python -m benchmarks.sse_clients --host H --port P --path /vacancy/stream?code=X --clients N --out FILE``:

- stdout ``ready`` once every client has its stream open (the server's ``retry:`` frame arrived);
- stdout ``got <seq>`` once every client has received the event of sequence ``<seq>`` (from its data);
- on ``quit`` (stdin) writes ``{"arrivals": {seq: [perf_counter, ...]}, "reconnects": n}`` to ``--out`` and exits.

``time.perf_counter`` is CLOCK_MONOTONIC on Linux, so the arrival times compare with the benchmark's own clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time

# The event's sequence, from its JSON data (the API's frames and Nchan's carry the same data; Nchan's ``id:`` is
# its own message id, not the sequence).
DATA_SEQ = re.compile(rb'(?:^|\n)data: [^\n]*?"seq": (\d+)')
# The first bytes of an open stream: the API's ``retry:`` frame, Nchan's ``: hi`` comment.
OPENED = (b"retry:", b": hi")


class SseClient(asyncio.Protocol):
    """One stream: counts ``id:`` lines as they arrive (frames split across reads are joined at line ends)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.rest = b""
        self.opened = False

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        data = self.rest + data
        cut = data.rfind(b"\n") + 1
        self.rest, data = data[cut:], data[:cut]
        if not self.opened and any(marker in data for marker in OPENED):
            self.opened = True
            self.fleet.opened()
        if b"data: " in data:
            for match in DATA_SEQ.finditer(data):
                self.fleet.arrived(int(match.group(1)), now)
        if b"event: reconnect" in data:
            self.fleet.reconnects += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.fleet.lost += 1


class Fleet:
    """Every client of this process and what they received."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.open = 0
        self.lost = 0
        self.reconnects = 0
        self.arrivals: dict[int, list[float]] = {}

    def opened(self) -> None:
        self.open += 1
        if self.open == self.clients:
            print("ready", flush=True)

    def arrived(self, seq: int, at: float) -> None:
        times = self.arrivals.setdefault(seq, [])
        times.append(at)
        if len(times) == self.clients:
            print(f"got {seq}", flush=True)


async def run(host: str, port: int, path: str, clients: int, out: str) -> None:
    """Open ``clients`` streams (at most 200 connecting at once), then serve the stdin/stdout protocol."""
    loop = asyncio.get_running_loop()
    fleet = Fleet(clients)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    gate = asyncio.Semaphore(200)
    transports = []

    async def connect() -> None:
        async with gate:
            transport, _ = await loop.create_connection(lambda: SseClient(fleet), host, port)
            transport.write(request)
            transports.append(transport)

    await asyncio.gather(*(connect() for _ in range(clients)))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()) and line.strip() != b"quit":
        pass
    with open(out, "w") as fh:
        json.dump({"arrivals": fleet.arrivals, "reconnects": fleet.reconnects, "lost": fleet.lost}, fh)
    for transport in transports:
        transport.close()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop  # uvicorn's loop too (uvicorn[standard])
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(run(args.host, args.port, args.path, args.clients, args.out))


if __name__ == "__main__":
    main()
