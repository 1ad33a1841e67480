"""``worker [--concurrency N] [--queue Q]``: execute queued runs (PostgreSQL; many per machine)."""

from __future__ import annotations

import typer

from agentform.api.cli import app, globals_of


@app.command("worker")
def worker_cmd(
    ctx: typer.Context,
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Runs executed at once by this worker."),
    queue: list[str] = typer.Option(None, "--queue", "-q", help="Take runs from this queue only (repeatable; default: every queue)."),
    drain_timeout: float = typer.Option(30.0, "--drain-timeout", help=(
        "On SIGTERM, how long a running run may take to reach its next checkpoint before it is released anyway (s).")),
    once: bool = typer.Option(False, "--once", help="Exit when the queue is empty instead of waiting for more."),
    metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535, help=(
        "Serve this worker's own metrics (model and tool call latency, runs it executes) at /metrics on this port.")),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help=(
        "Address of --metrics-port (0.0.0.0 in a container, for Prometheus to scrape).")),
) -> None:
    """Execute queued runs (`run --detach`) until SIGTERM; many workers may share one PostgreSQL.

    SIGTERM drains: no new run is taken, running runs stop at their next checkpoint and go
    back to the queue, where another worker resumes them. Needs --store postgresql://...
    """
    import asyncio

    from agentform import Engine

    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)
    try:
        if engine.dialect == "postgres":
            typer.echo(f"agentform worker: concurrency {concurrency}, queues "
                       f"{', '.join(queue) if queue else 'all'}; SIGTERM drains", err=True)
        asyncio.run(engine.worker(concurrency=concurrency, queues=queue or None, wait=not once,
                                  drain_timeout=drain_timeout, metrics_port=metrics_port,
                                  metrics_host=metrics_host))
    finally:
        engine.close()


def detach_run(ctx: typer.Context, target: str, input, params: dict, thread: str | None,
               output: str | None, queue: str | None = None) -> None:
    """``run --detach``: queue the run, print its id (or its record with -o), exit 0; warn on
    PostgreSQL when no worker has a live heartbeat (the run waits until one starts)."""
    import asyncio

    from agentform import Engine
    from agentform.api.cli.cmd_run import dump

    options = globals_of(ctx)
    engine = Engine(home=options.home, store=options.store_url)

    async def main():
        try:
            queued = await engine.enqueue(target, input=input, params=params, thread=thread, queue=queue)
            return queued, await asyncio.to_thread(engine.live_workers)
        finally:
            await engine.aclose()

    run, workers = asyncio.run(main())
    if output in ("json", "yaml"):
        dump({"id": run.id, "status": run.status, "target": run.target, "revision": run.revision}, output)
    else:
        typer.echo(run.id)
    if workers == 0:
        typer.echo(f"warning: no worker has a live heartbeat: run {run.id} waits in the queue until "
                   "one starts (agentform worker)", err=True)

