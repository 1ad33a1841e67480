"""``serve [--host] [--port] [--auth] [--rate-limit N] [--workers N | --no-worker]``: the HTTP API,
SSE and the web view (api/http/), served by uvicorn."""

from __future__ import annotations

import ipaddress
import signal

import typer

from agentform.api.cli import app, globals_of

MAX_CONNECTIONS = 4096   # open connections (SSE followers included); beyond, uvicorn answers 503


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --auth."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to bind (0: any free port)."),
    auth: bool = typer.Option(False, "--auth", help="Reading needs a token with the read scope too."),
    rate_limit: int = typer.Option(60, "--rate-limit", min=0, max=100_000,
                                   help="Writes per minute per token (0: no limit)."),
    workers: int = typer.Option(4, "--workers", min=1, max=256,
                                help="PostgreSQL: runs the embedded worker executes at once."),
    no_worker: bool = typer.Option(False, "--no-worker",
                                   help="PostgreSQL: no embedded worker; `agentform worker` processes execute queued runs."),
    drain_timeout: float = typer.Option(30.0, "--drain-timeout", min=0, max=3600,
                                        help="On SIGTERM, how long runs executing here may take to finish (s)."),
) -> None:
    """Serve the HTTP API (/api/v1, SSE events, /metrics) and the web view.

    Runs started over HTTP: on PostgreSQL they are queued for workers (this server runs one
    unless --no-worker); on SQLite this server executes them itself.
    """

    import agentform

    if not is_loopback(host) and not auth:
        raise agentform.UsageError(f"--host {host} is not a loopback address: serving beyond this machine needs "
                                   "--auth (every request then needs a token; `agentform token create`)")
    import uvicorn

    from agentform.api.http.app import create_app

    options = globals_of(ctx)
    engine = agentform.Engine(home=options.home, store=options.store_url)
    holder: dict[str, uvicorn.Server] = {}

    def stop() -> None:
        if "server" in holder:
            holder["server"].should_exit = True

    try:
        api = create_app(engine, auth=auth, rate_limit=rate_limit, worker=not no_worker,
                         worker_concurrency=workers, drain_s=drain_timeout, on_worker_exit=stop)
        config = uvicorn.Config(api, host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=5, lifespan="on", proxy_headers=False,
                                limit_concurrency=MAX_CONNECTIONS)
        server = holder["server"] = uvicorn.Server(config)
        where = engine.live_workers()
        runs = ("executed by this server (SQLite)" if where is None else
                "queued for `agentform worker` processes" if no_worker else "queued; this server's worker executes them")
        typer.echo(f"agentform serve: http://{host}:{port} (auth {'on' if auth else 'off'}; "
                   f"writes {rate_limit}/min per token; runs started here are {runs})", err=True)
        # uvicorn re-raises the signal it stopped on once it has shut down gracefully; SIGTERM is
        # the ordinary way to stop a server, so that second delivery finds a handler: exit 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        server.run()   # uvicorn's own loop factory: uvloop when installed
    finally:
        engine.close()
