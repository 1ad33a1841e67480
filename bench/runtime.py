"""Benchmark: the runtime on the peers' 11-agent workload, next to LangGraph and the OpenAI Agents SDK.

    python bench/runtime.py [--quick] [--no-peers] [--json]

The workload (as bench/peers/harness.py builds it for the peers): a manager asks two leads
in one turn, each lead asks its four specialists in one turn, then everyone answers: 11
agent invocations, 14 model calls, an ideal critical path of 5 model latencies. agentform
runs it through ``Engine.run`` with the scripted model, every event persisted. Printed:

1. engine overhead per agent invocation (zero-latency model), SQLite and PostgreSQL:
   median wall time of a run / 11, and its CPU time; on SQLite also without and with a
   secret registered with the redactor (alternating runs), the redaction choke point's cost;
2. wall time of one run with 100 ms model latency, against the ideal 500 ms;
3. 200 concurrent runs in one process (a fresh child process): runs/s and peak RSS;
4. events appended per second through the engine's group-commit writer (SQLite);
5. ``agentform run`` of the offline example (the one ``agentform init`` scaffolds) as a whole
   process (median), and of examples/research-team;
then the peers' figures (bench/peers/run_peers.py --json) and the ratios against the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEADS = {"lead-a": ["spec-a1", "spec-a2", "spec-a3", "spec-a4"],
         "lead-b": ["spec-b1", "spec-b2", "spec-b3", "spec-b4"]}
INVOCATIONS, MODEL_CALLS, IDEAL_MS = 11, 14, 500
WARMUP, REPS, LATENCY_REPS, CONCURRENT = 5, 31, 5, 200
PG = os.environ.get("AGENTFORM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _ask(name: str) -> dict:
    return {"name": "ask_" + name.replace("-", "_"), "arguments": {"task": f"{name}: please help"}}


def write_workload(root: Path, latency_ms: int) -> Path:
    """The 11-agent hierarchy as manifests with a scripted model of the given latency."""
    lat = {"latency": f"{latency_ms}ms"} if latency_ms else {}
    agents = {"manager": [{"toolCalls": [_ask("lead-a"), _ask("lead-b")], **lat},
                          {"content": "manager: done", **lat}]}
    docs = []
    head = "apiVersion: agentform.dev/v1alpha1\n"
    for lead, specs in LEADS.items():
        boss = f"{lead}-mgr"  # the lead agent; the team is called after the lead (ask_lead_a)
        agents[boss] = [{"toolCalls": [_ask(s) for s in specs], **lat}, {"content": f"{lead}: done", **lat}]
        for spec in specs:
            agents[spec] = [{"content": f"{spec}: done", **lat}]
            docs.append(f"{head}kind: Agent\nmetadata: {{name: {spec}}}\nspec: {{model: m, description: {spec}}}\n")
        docs.append(f"{head}kind: Agent\nmetadata: {{name: {boss}}}\nspec: {{model: m, description: {lead}}}\n")
        members = ", ".join(f"{{agent: {s}}}" for s in specs)
        docs.append(f"{head}kind: Team\nmetadata: {{name: {lead}}}\n"
                    f"spec: {{manager: {boss}, maxParallel: 4, members: [{members}]}}\n")
    docs.append(f"{head}kind: Agent\nmetadata: {{name: manager}}\nspec: {{model: m}}\n")
    docs.append(f"{head}kind: Team\nmetadata: {{name: company}}\n"
                "spec: {manager: manager, members: [{team: lead-a}, {team: lead-b}]}\n")
    docs.append(f"{head}kind: Model\nmetadata: {{name: m}}\nspec: {{model: scripted, script: script.json}}\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "script.json").write_text(json.dumps({"agents": agents}))
    (root / "all.yaml").write_text("---\n".join(docs))
    return root


def apply(engine, path: Path) -> None:
    result = engine.apply(path)
    if result.revision is None and engine.store.latest_revision() is None:
        raise SystemExit(f"apply {path} failed: {result.failed}")


def engine_for(tmp: Path, latency_ms: int, store: str | None = None):
    from agentform.engine.api import Engine

    engine = Engine(home=tmp / "home", store=store)
    apply(engine, write_workload(tmp / f"m{latency_ms}", latency_ms))
    return engine


async def _one(engine) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    result = await engine.run("team/company", input="Size the market for solar-powered kettles")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.status != "succeeded":
        raise SystemExit(f"bench run failed: {result.error}")
    return wall, cpu


def check_counts(engine, run_id: str) -> int:
    events = engine.store.read_events(run_id)
    calls = sum(e.type == "message.completed" for e in events)
    invocations = sum(e.type == "agent.started" for e in events)
    assert (calls, invocations) == (MODEL_CALLS, INVOCATIONS), (calls, invocations)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return len(events)


async def overhead(engine, reps: int) -> dict:
    for _ in range(WARMUP):
        await _one(engine)
    timings = [await _one(engine) for _ in range(reps)]
    events = check_counts(engine, engine.store.list_runs(limit=1)[0].id)
    wall = statistics.median(t[0] for t in timings) * 1000
    cpu = statistics.median(t[1] for t in timings) * 1000
    return {"ms_per_invocation": round(wall / INVOCATIONS, 3), "ms_per_run": round(wall, 2),
            "cpu_ms_per_invocation": round(cpu / INVOCATIONS, 3), "events_per_run": events}


async def redaction_cost(engine, reps: int) -> dict:
    """Per-invocation overhead without and with a registered secret, alternating run by run in one
    process (the same engine, store and warm caches): what the redaction choke point costs."""
    from agentform.engine.redaction import REDACTOR

    for _ in range(WARMUP):
        await _one(engine)
    off, on = [], []
    try:
        for _ in range(reps):
            REDACTOR.clear()
            off.append(await _one(engine))
            REDACTOR.add("sk-bench-" + "0123456789abcdef" * 2)
            on.append(await _one(engine))
    finally:
        REDACTOR.clear()

    def per_invocation(timings: list, i: int) -> float:
        return round(statistics.median(t[i] for t in timings) * 1000 / INVOCATIONS, 3)

    return {"without_ms": per_invocation(off, 0), "with_ms": per_invocation(on, 0),
            "without_cpu_ms": per_invocation(off, 1), "with_cpu_ms": per_invocation(on, 1)}


async def latency(engine, reps: int) -> float:
    await _one(engine)
    return round(statistics.median([(await _one(engine))[0] for _ in range(reps)]) * 1000, 1)


def child_concurrent(tmp: Path) -> dict:
    """Run in a fresh child: 200 concurrent runs on SQLite; runs/s and this process's peak RSS."""
    engine = engine_for(tmp, 0)

    async def main() -> float:
        await _one(engine)
        t0 = time.perf_counter()
        results = await asyncio.gather(*(engine.run("team/company", input=f"run {i}") for i in range(CONCURRENT)))
        elapsed = time.perf_counter() - t0
        assert all(r.status == "succeeded" for r in results), {r.error for r in results}
        return elapsed

    elapsed = asyncio.run(main())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"runs_per_s": round(CONCURRENT / elapsed, 1), "peak_rss_mb": round(peak, 1)}


def events_per_s(tmp: Path, total: int = 100_000) -> float:
    """Events through the writer (seq assignment, group commit, run totals) into SQLite, per second."""
    from agentform.engine.events import EventWriter
    from agentform.engine.store import open_store
    from agentform.engine.store.base import RunRecord

    store = open_store(f"sqlite:///{tmp / 'events.db'}")
    for i in range(10):
        store.create_run(RunRecord(id=f"bench-{i}", target="team/default/x", status="running", revision=0,
                                   created_at=time.time()))
    writer = EventWriter.for_store(store)
    streams = [writer.open(f"bench-{i}") for i in range(10)]
    data = {"text": "a token or two"}

    async def main() -> float:
        t0 = time.perf_counter()
        for n in range(total):
            streams[n % 10].emit("message.delta", "team/agent", data)
        for s in streams:
            await s.durable()
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    assert sum(len(store.read_events(f"bench-{i}")) for i in range(10)) == total
    store.close()
    return round(total / elapsed)


def run_process(tmp: Path, reps: int = 5) -> dict:
    """Median wall time of ``agentform run`` as a whole process: the offline example that
    ``agentform init`` scaffolds (team/demo), and examples/research-team (whose scripted
    model spends 150 ms of simulated model time on its critical path)."""
    exe = str(Path(sys.executable).parent / "agentform")
    env = {**os.environ, "CI": "true"}
    subprocess.run([exe, "init", str(tmp / "init")], check=True, capture_output=True, env=env)
    cases = {"init_example_s": (tmp / "init", "team/demo"),
             "research_team_s": (ROOT / "examples" / "research-team", "team/research")}
    figures = {}
    for name, (folder, target) in cases.items():
        home = tmp / f"home-{name}"
        subprocess.run([exe, "--home", str(home), "apply", str(folder)], check=True, capture_output=True, env=env)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            done = subprocess.run([exe, "--home", str(home), "run", target, "-i", "hello", "--ci"],
                                  capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise SystemExit(f"agentform run {target} failed: {done.stderr}")
        figures[name] = round(statistics.median(times), 3)
    return figures


def pg_schema_url() -> str | None:
    if PG == "skip":
        return None
    import secrets

    try:
        import psycopg

        psycopg.connect(PG, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - PostgreSQL not there: leave it out
        return None
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}schema=bench_{secrets.token_hex(4)}"


def drop_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def peers() -> dict:
    try:
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers" / "run_peers.py"), "--json"],
                              capture_output=True, text=True, timeout=3600)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - the peers are reported as missing, ours still print
        return {"error": str(exc)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (they build venvs)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_concurrent(Path(args.child))))
        return
    reps = 11 if args.quick else REPS
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        engine = engine_for(tmp / "sqlite", 0)
        figures["sqlite"] = asyncio.run(overhead(engine, reps))
        figures["redaction"] = asyncio.run(redaction_cost(engine, reps))
        engine.close()
        url = pg_schema_url()
        if url:
            engine = engine_for(tmp / "pg", 0, store=url)
            figures["postgres"] = asyncio.run(overhead(engine, reps))
            engine.close()
            drop_schema(url)
        engine = engine_for(tmp / "lat", 100)
        figures["latency100_ms"] = asyncio.run(latency(engine, LATENCY_REPS))
        engine.close()
        (tmp / "child").mkdir()
        child = subprocess.run([sys.executable, __file__, "--child", str(tmp / "child")],
                               capture_output=True, text=True, check=True)
        figures["concurrent"] = json.loads(child.stdout)
        figures["events_per_s"] = events_per_s(tmp)
        figures["run_process_s"] = run_process(tmp)
    figures["peers"] = {} if args.no_peers else peers()
    print(json.dumps(figures, indent=2) if args.json else report(figures))


def report(f: dict) -> str:
    lines = ["agentform runtime, 11-agent workload (14 model calls), every event persisted"]
    for backend in ("sqlite", "postgres"):
        if backend in f:
            o = f[backend]
            lines.append(f"  overhead {backend:<8}: {o['ms_per_invocation']:.3f} ms/invocation "
                         f"({o['ms_per_run']:.2f} ms/run, CPU {o['cpu_ms_per_invocation']:.3f} ms/inv, "
                         f"{o['events_per_run']} events/run)")
    r = f["redaction"]
    lines.append(f"  redaction        : {r['without_ms']:.3f} -> {r['with_ms']:.3f} ms/invocation with a secret "
                 f"registered (CPU {r['without_cpu_ms']:.3f} -> {r['with_cpu_ms']:.3f}; SQLite, same run)")
    lat = f["latency100_ms"]
    lines.append(f"  100 ms latency   : {lat:.1f} ms (ideal {IDEAL_MS}; +{(lat / IDEAL_MS - 1) * 100:.1f} %)")
    c = f["concurrent"]
    lines.append(f"  200 concurrent   : {c['runs_per_s']:.1f} runs/s, peak RSS {c['peak_rss_mb']:.0f} MB")
    lines.append(f"  events appended  : {f['events_per_s']:,} events/s (SQLite, through the writer)")
    rp = f["run_process_s"]
    lines.append(f"  `agentform run`  : {rp['init_example_s']:.3f} s (the `init` example, whole process, median); "
                 f"research-team {rp['research_team_s']:.3f} s (incl. 150 ms simulated model time)")
    peers = {k: v for k, v in f.get("peers", {}).items() if isinstance(v, dict) and "error" not in v}
    if not peers:
        lines.append(f"  peers: not measured ({f.get('peers', {}).get('error', 'skipped') if f.get('peers') else 'skipped'})")
        return "\n".join(lines)
    lines.append("")
    lines.append(f"  {'':<16}{'ms/inv':>10}{'100ms run':>12}{'runs/s':>10}{'RSS MB':>10}{'import s':>10}")
    ours = f["sqlite"]
    lines.append(f"  {'agentform':<16}{ours['ms_per_invocation']:>10.3f}{lat:>12.1f}{c['runs_per_s']:>10.1f}"
                 f"{c['peak_rss_mb']:>10.0f}{'':>10}")
    for name, p in peers.items():
        lines.append(f"  {name:<16}{p.get('overhead_ms_per_invocation', 0):>10.3f}{p.get('latency100_ms', 0):>12.1f}"
                     f"{p.get('concurrent_runs_per_s', 0):>10.1f}{p.get('concurrent_peak_rss_mb', 0):>10.0f}"
                     f"{p.get('import_s', 0):>10.2f}")
    fastest = min(p["overhead_ms_per_invocation"] for p in peers.values())
    best_rate = max(p["concurrent_runs_per_s"] for p in peers.values())
    least_rss = min(p["concurrent_peak_rss_mb"] for p in peers.values())
    lines.append("")
    lines.append(f"  overhead ratio   : {ours['ms_per_invocation'] / fastest:.3f} of the faster peer (target <= 0.2)")
    lines.append(f"  100 ms case      : {(lat / IDEAL_MS - 1) * 100:.1f} % over ideal (target <= 3 %)")
    lines.append(f"  concurrency      : {c['runs_per_s'] / best_rate:.1f}x the better peer (target >= 5x), "
                 f"RSS {c['peak_rss_mb']:.0f} vs {least_rss:.0f} MB (target: lower)")
    lines.append(f"  events/s         : {f['events_per_s']:,} (target >= 20,000)")
    lines.append(f"  run process      : {rp['init_example_s']:.3f} s (target < 0.6 s)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
