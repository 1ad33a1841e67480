"""Benchmark: SSE fan-out of ``agentform serve`` to many followers of one live run.

    python bench/serve.py [--clients 500] [--events 2000] [--rate 200] [--stores sqlite,postgres] [--json]

Per store: ``agentform serve`` runs as its own process; another process
(tests/http/emitter.py) writes a run of ``--events`` events at ``--rate`` a second through
the engine's real writer; ``--clients`` SSE clients in this one asyncio process follow it,
each over its own connection, reading raw SSE (no client library). Latency is the time an
event is received minus its ``ts`` (stamped at emit, before the group commit), so it covers
commit, the server's store wait (SQLite: its 25 ms poll; PostgreSQL: LISTEN/NOTIFY), the
fan-out and the socket. Printed: p50/p90/p99/max latency, the server's peak RSS, the
clients' CPU time, and whether every client got every event once, in order. Target: p99
under 250 ms. PostgreSQL: a throw-away schema of ``AGENTFORM_TEST_PG``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
PG = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CLI = [sys.executable, "-c", "import sys; from agentform.api.cli import main; main(sys.argv[1:])"]
EMITTER = ROOT / "tests" / "http" / "emitter.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client(asyncio.Protocol):
    """One follower on its own connection: a raw HTTP/1.1 GET with Accept: text/event-stream; the
    chunked body and the SSE messages in it parsed by hand as bytes arrive (no client library)."""

    def __init__(self, run_id: str) -> None:
        self.request = (f"GET /api/v1/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Accept: text/event-stream\r\n\r\n").encode()
        self.latencies: list[float] = []
        self.seqs: list[int] = []
        self.connected = asyncio.Event()
        self.closed = asyncio.get_running_loop().create_future()
        self.ended = False
        self._raw = b""        # bytes not parsed yet (headers, chunk framing)
        self._sse = b""        # SSE text not split into messages yet
        self._left = -1        # bytes left in the current chunk (-1: a size line comes next)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        raw = self._raw + data
        if not self.connected.is_set():
            head, found, raw = raw.partition(b"\r\n\r\n")
            if not found:
                self._raw = head
                return
            assert b" 200 " in head.split(b"\r\n", 1)[0], head
            self.connected.set()
        while raw:
            if self._left < 0:
                line, found, rest = raw.partition(b"\r\n")
                if not found:
                    break
                raw = rest
                if line:
                    self._left = int(line, 16)
                continue
            take = raw[:self._left]
            raw = raw[len(take):]
            self._left -= len(take)
            self._sse += take
            if self._left == 0:
                self._left = -1
        self._raw = raw
        *messages, self._sse = self._sse.split(b"\n\n")
        for message in messages:
            self._message(message, now)

    def _message(self, message: bytes, now: float) -> None:
        if message.startswith(b":"):
            return   # keep-alive
        if message.startswith(b"event: end"):
            self.ended = True
            self.transport.close()
            return
        head, _, rest = message.partition(b"\ndata: ")
        self.seqs.append(int(head[4:]))
        at = rest.index(b'"ts":') + 5   # the event's emit time, without parsing the whole JSON
        self.latencies.append(now - float(rest[at:rest.index(b",", at)]))


def _rss(pid: int) -> int:
    """Resident set size of a process, bytes (Linux /proc: no extra package)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_sampler(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], _rss(pid))
        except OSError:
            return
        stop.wait(0.2)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {proc.communicate()[1]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("serve did not become ready")


async def _bench(port: int, store_url: str, clients: int, events: int, rate: float) -> dict:
    emitter = subprocess.Popen([sys.executable, str(EMITTER), "--store", store_url, "--events", str(events),
                                "--rate", str(rate), "--wait-go"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=ROOT)
    run_id = (await asyncio.to_thread(emitter.stdout.readline)).strip()
    loop = asyncio.get_running_loop()
    followers = []
    for i in range(clients):
        _, client = await loop.create_connection(lambda: Client(run_id), "127.0.0.1", port)
        followers.append(client)
        if i % 50 == 49:
            await asyncio.sleep(0)   # let connections open in waves, not all at once
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in followers)), timeout=120)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    emitter.stdin.write("go\n")
    emitter.stdin.flush()
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in followers)), timeout=events / rate * 10 + 60)
    wall = time.monotonic() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.to_thread(emitter.wait, 60)
    latencies = sorted(x for c in followers for x in c.latencies)
    complete = sum(c.ended and c.seqs == list(range(1, events + 1)) for c in followers)
    q = statistics.quantiles(latencies, n=100)
    return {"clients": clients, "events": events, "rate": rate, "wall_s": round(wall, 2),
            "received": len(latencies), "complete_clients": complete,
            "p50_ms": round(q[49] * 1000, 1), "p90_ms": round(q[89] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "clients_cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 2)}


def _run(coro):
    """On uvloop when installed (as serve itself runs): the clients' process is a benchmark tool."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_store(kind: str, clients: int, events: int, rate: float) -> dict:
    from contextlib import ExitStack

    from _pg import temporary_schema

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        home = Path(tmp) / "home"
        url = f"sqlite:///{home}/state.db" if kind == "sqlite" else stack.enter_context(temporary_schema(PG))
        port = free_port()
        server = subprocess.Popen([*CLI, "--home", str(home), "--store", url, "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        stop, peak = threading.Event(), [0]
        try:
            _wait_ready(f"http://127.0.0.1:{port}", server)
            sampler = threading.Thread(target=_rss_sampler, args=(server.pid, stop, peak), daemon=True)
            sampler.start()
            cpu_before = _cpu_s(server.pid)
            result = _run(_bench(port, url, clients, events, rate))
            server_cpu = _cpu_s(server.pid) - cpu_before
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=30)
        return {"store": kind, **result, "server_peak_rss_mb": round(peak[0] / 2**20, 1),
                "server_cpu_s": round(server_cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = [run_store(kind, args.clients, args.events, args.rate) for kind in args.stores.split(",")]
    if args.json:
        print(json.dumps({"load_average": load, "results": results}, indent=2))
        return
    print(f"serve SSE fan-out: {args.clients} clients follow one run of {args.events} events at {args.rate:g}/s "
          f"written by another process (target: p99 < 250 ms); {os.cpu_count()} cores, load average {load:.1f} "
          "at start")
    for r in results:
        verdict = "ok" if r["p99_ms"] < 250 and r["complete_clients"] == r["clients"] else "MISSED"
        print(f"  {r['store']:<9} latency p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, "
              f"max {r['max_ms']} ms; {r['complete_clients']}/{r['clients']} clients got every event once, in order; "
              f"server peak RSS {r['server_peak_rss_mb']} MB, CPU {r['server_cpu_s']} s; clients' CPU {r['clients_cpu_s']} s over "
              f"{r['wall_s']} s  [{verdict}]")


if __name__ == "__main__":
    main()
