"""The public Python API: what the CLI, scripts, notebooks and benchmarks are built on.

    from agentform import Engine

    engine = Engine(home=".agentform")            # or Engine(store="postgresql://...")
    engine.apply("examples/research-team")         # like `agentform apply`
    result = await engine.run("team/research", input="Heat pumps?")
    print(result.id, result.status, result.output, result.tokens_in, result.cost_usd)
    async for event in engine.events(result.id, after=0, follow=False):
        print(event.seq, event.type, event.path, event.data)

``run`` returns a ``RunResult`` (id, status, output, error, tokens_in, tokens_out,
cost_usd, exit_code): the same data that ``agentform run -o json`` prints. ``events``
yields the run's stream from ``after + 1`` on; with ``follow=True`` it waits for new events
until the run finishes. One Engine may run many runs concurrently in one event loop.

Engine is the one door: the CLI (api/cli), the HTTP app (api/http) and the MCP server
(api/mcp) call it and import nothing else of the engine (tests/project/test_one_door.py).
The read side (``validate``, ``resources``, ``resource``, ``revisions``, ``revision_diff``,
``runs``, ``run_info``, ``run_detail``, ``threads``, ``event_page``) returns the typed views of
engine/views.py, whose ``to_dict()`` is what ``-o json`` prints and HTTP returns.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from agentform.engine.runtime.result import RunResult
from agentform.engine.store.base import Event, RunRecord

__all__ = ["Engine", "RunResult"]

FINISHED = ("run.completed", "run.failed", "run.cancelled")


class Engine:
    """An agentform installation: its home folder (state, workspaces, keys) and its store."""

    def __init__(self, home: str | Path | None = None, store: Any = None):
        self.home = Path(home or os.environ.get("AGENTFORM_HOME") or ".agentform")
        self.use_settings(self.home)
        if store is None or isinstance(store, str):
            self._store_url, self._store = store or os.environ.get("AGENTFORM_STORE"), None
            self._owns_store = True
        else:
            self._store_url, self._store = None, store
            self._owns_store = False
            self._attach_listeners(store)

    @staticmethod
    def use_settings(home: str | Path) -> None:
        """Take this process's engine settings (``templates.*``) from ``<home>/config.yaml``."""
        from agentform.engine import template_settings

        template_settings.use_home(home)

    @staticmethod
    def redact_std_streams() -> None:
        """Route this process's stdout and stderr through the redaction choke point (faces call
        it first, so that nothing they print can carry a secret value this process read)."""
        from agentform.engine.redaction import redact_std_streams

        redact_std_streams()

    @property
    def store(self) -> Any:
        # Opened at first use: `secret seal --public-key` on a laptop must not create a home.
        if self._store is None:
            from agentform.engine.store import open_store

            store = open_store(self._store_url, home=self.home)
            try:
                self._attach_listeners(store)
            except BaseException:
                store.close()
                raise
            self._store = store
        return self._store

    def _attach_listeners(self, store: Any) -> None:
        """Webhooks (engine/notify.py) and this process's metrics (engine/process_metrics.py)
        listen to what this store commits; UsageError when ``notify:`` in config.yaml is wrong."""
        from agentform.engine import notify, process_metrics

        notify.attach(store, self.home)
        process_metrics.install(store)

    def notifications(self, run_id: str | None = None, limit: int = 100) -> list[Any]:
        """Recorded webhook deliveries (Delivery: url, event, status, attempts, last code and
        error), newest first, or one run's in stream order."""
        from agentform.engine import notify

        return notify.deliveries(self.store, run_id, limit)

    def apply(self, path: str | Path, *, app: str | None = None, prune: bool = False,
              prune_all: bool = False, lock_timeout: float = 0.0,
              expect_digest: str | None = None, prune_data: bool = False) -> Any:
        """Apply the manifests under ``path``, or a saved plan file (checked against its HMAC and
        ``expect_digest``), as ``agentform apply``; returns the ApplyResult. A pruned Workspace's
        data is deleted only with ``prune_data`` (otherwise ``result.notes`` says where it stays)."""
        from agentform.engine.reconcile import apply_path

        return apply_path(self.store, Path(path), home=self.home, app=app, prune=prune or prune_all,
                          prune_all=prune_all, lock_timeout=lock_timeout, expect_digest=expect_digest,
                          prune_data=prune_data)

    def plan(self, path: str | Path, *, app: str | None = None, prune: bool = False,
             out: str | Path | None = None) -> tuple[Any, str | None]:
        """The plan of the manifests under ``path`` against the store (as ``agentform plan``; no
        secret is resolved); with ``out``, also saved there, signed with the store's plan key
        (created when missing). Returns (plan, digest or None)."""
        from agentform.engine.desired import from_manifest_set
        from agentform.engine.plan import make_plan
        from agentform.engine.planfile import PLAN_KEY, save_plan
        from agentform.engine.reconcile import default_app, load_valid

        path = Path(path)
        manifests = load_valid(path)
        plan = make_plan(from_manifest_set(manifests), self.store, app or default_app(path),
                         prune=prune, home=self.home, resolve_secrets=False)
        if out is None:
            return plan, None
        key = self.store.hmac_key(PLAN_KEY)
        digest = save_plan(plan, Path(out), root=path.resolve(), failed_files=list(manifests.failed_files),
                           key=key)
        return plan, digest

    @staticmethod
    def desired_hashes(path: str | Path) -> dict[Any, str]:
        """Resource key -> spec hash of the manifests under ``path`` (what `get --path` compares)."""
        from agentform.engine.desired import from_manifest_set
        from agentform.engine.reconcile import load_valid

        return {d.key: d.spec_hash for d in from_manifest_set(load_valid(Path(path)))}

    # -- the read side (engine/queries.py): typed views with to_dict() for every face --------------

    @staticmethod
    def validate(path: str | Path, *, max_file_bytes: int = 1 << 20) -> Any:
        """Every problem of the manifests under ``path`` (``agentform validate``): a
        ValidationReport; opens no store."""
        from agentform.engine.validation.report import validation_report

        return validation_report(path, max_file_bytes=max_file_bytes)

    def resources(self, kind: str | None = None, *, namespace: str | None = "default",
                  labels: dict[str, str] | None = None, path: str | Path | None = None) -> list[Any]:
        """Applied resources with sync and health (``get``): ResourceStatus list; ``kind`` as
        agent/agents/Agent, ``namespace=None`` for all, ``labels`` all must match; with ``path``,
        sync also compares with the manifests there."""
        from agentform.engine import queries

        desired = self.desired_hashes(path) if path is not None else None
        return queries.resources(self.store, kind, namespace=namespace, labels=labels, desired=desired)

    def resource(self, kind: str, name: str, namespace: str = "default", *,
                 path: str | Path | None = None) -> Any:
        """One resource in full (``describe``): a ResourceDetail; NotFound when not applied."""
        from agentform.engine import queries

        desired = self.desired_hashes(path) if path is not None else None
        return queries.resource(self.store, kind, name, namespace, desired=desired)

    def search_knowledge(self, name: str, query: str, top_k: int = 5, *, namespace: str = "default",
                         path: str | None = None) -> Any:
        """The chunks of KnowledgeBase ``name`` nearest ``query`` (KnowledgeHits: path, line range,
        score, text), as an agent's ``search_knowledge`` finds them; ``path`` is a glob of documents.
        Builds the index on this machine first when it has none; NotFound when not applied."""
        from agentform.engine.knowledge.search import search_applied

        return search_applied(self.store, self.home, name, query, top_k, namespace=namespace, path=path)

    def revisions(self, app: str | None = None, limit: int = 50) -> list[Any]:
        """Recorded revisions, newest first (RevisionInfo)."""
        from agentform.engine import queries

        return queries.revisions(self.store, app, limit)

    def revision(self, number: int) -> Any:
        """One revision (RevisionInfo); NotFound when there is none of that number."""
        from agentform.engine import queries

        return queries.revision(self.store, number)

    def revision_diff(self, app: str | None, from_revision: int, to_revision: int) -> Any:
        """The net change per resource after ``from_revision`` up to ``to_revision`` (RevisionDiff)."""
        from agentform.engine import queries

        return queries.revision_diff(self.store, app, from_revision, to_revision)

    def runs(self, *, status: str | None = None, target: str | None = None, thread: str | None = None,
             namespace: str | None = None, limit: int = 50, cursor: str | None = None) -> Any:
        """Runs newest first (``runs``, ``get runs``), filtered: a RunPage whose ``next_cursor``
        continues the listing. ``target`` as ``team/NAME`` or ``team/NS/NAME``."""
        from agentform.engine import queries

        return queries.runs(self.store, status=status, target=target, thread=thread, namespace=namespace,
                            limit=limit, cursor=cursor)

    def run_info(self, run_id: str) -> Any:
        """One run as listed (RunInfo: shown status, totals, times) by id or unique prefix."""
        from agentform.engine import queries

        return queries.run(self.store, run_id)

    def threads(self, *, namespace: str | None = None, limit: int = 50) -> list[Any]:
        """Conversation threads, latest activity first (ThreadInfo, with each one's latest run)."""
        from agentform.engine import queries

        return queries.threads(self.store, namespace=namespace, limit=limit)

    def event_page(self, run_id: str, after: int = 0, limit: int = 500) -> list[Event]:
        """Up to ``limit`` (at most 1000) events of a run after seq ``after``, without waiting."""
        from agentform.engine import queries

        return queries.event_page(self.store, run_id, after, limit)

    def run_detail(self, run_id: str, events: int = 20) -> Any:
        """One run in full (``describe run/ID``): a RunDetail with its input, params, output and
        its last ``events`` events."""
        from agentform.engine import queries

        return queries.run_detail(self.store, run_id, events)

    # -- small services for the faces: kinds, schemas, ids, who answers, which store ----------------

    @staticmethod
    def kind_of(word: str) -> str:
        """``agent``, ``agents`` or ``Agent`` -> ``Agent``; UsageError naming the kinds otherwise."""
        from agentform.engine.queries import kind_of

        return kind_of(word)

    @staticmethod
    def schemas(word: str | None = None) -> dict[str, dict[str, Any]]:
        """File name -> JSON Schema (what ``schemas/`` holds); with ``word`` (a kind as agent,
        agents or Agent, ``manifest`` or ``script``) only that one file; UsageError otherwise."""
        from agentform.engine import schemagen

        files = schemagen.all_schemas()
        return files if word is None else {(name := schemagen.file_of(word)): files[name]}

    @staticmethod
    def schema_text(schema: dict[str, Any]) -> str:
        """A schema as its file holds it (stable order, 2-space indent, final newline)."""
        from agentform.engine import schemagen

        return schemagen.dumps(schema)

    @staticmethod
    def stale_schemas(folder: str | Path) -> list[str]:
        """Schema files in ``folder`` that are missing or differ from what the specs generate."""
        from agentform.engine import schemagen

        return schemagen.stale_schemas(Path(folder))

    @staticmethod
    def new_id() -> str:
        """A new sortable id, as runs get (e.g. for a new ``chat`` thread)."""
        from agentform.engine.ids import new_id

        return new_id()

    @staticmethod
    def trace_id(run_id: str) -> str:
        """The OpenTelemetry trace id of a run's spans (32 hex digits: the run id's 128 bits)."""
        from agentform.engine.tracing.spans import trace_id_of

        return f"{trace_id_of(run_id):032x}"

    @staticmethod
    def os_user() -> str:
        """Who answers an approval by default: the OS user of this process."""
        from agentform.engine.runtime.approvals import os_user

        return os_user()

    @property
    def dialect(self) -> str:
        """``postgres`` or ``sqlite``: the kind of store (opened if it was not yet)."""
        from agentform.engine.workers.queue import is_postgres

        return "postgres" if is_postgres(self.store) else "sqlite"

    def graph_mermaid(self, key: Any, revision: int | None = None) -> str | None:
        """The compiled graph of ``key`` (at ``revision``, default the latest) as Mermaid; None
        when it is not applied."""
        from agentform.engine.graph import Graph
        from agentform.engine.mermaid import to_mermaid

        data = self.store.get_graph(key, revision)
        return None if data is None else to_mermaid(Graph.model_validate(data))

    def graph_layout(self, key: Any, revision: int | None = None) -> Any:
        """The compiled graph of ``key`` placed for drawing (the web view's SVG): a GraphLayout
        read from the same Mermaid text as ``graph_mermaid``; None when it is not applied."""
        from agentform.engine.graph_layout import layout_mermaid

        mermaid = self.graph_mermaid(key, revision)
        return None if mermaid is None else layout_mermaid(mermaid)

    async def run(self, target: str, input: Any = None, params: dict[str, Any] | None = None,
                  thread: str | None = None, on_event: Callable[[Event], None] | None = None,
                  wait_workspace: bool = True) -> RunResult:
        """Run ``target`` (``team/NAME``, ``agent/NS/NAME``, ``pipeline/NAME``) to its end; never raises for a failed run.
        A run holds its workspaces: it waits for another run that holds one (``workspace.waiting``
        names it), or with ``wait_workspace=False`` raises WorkspaceBusy at once, creating no run."""
        from agentform.engine.runtime.runner import start_run_async

        return await start_run_async(self.store, target, input=input, params=params, thread=thread,
                                     home=self.home, on_event=on_event, wait_workspace=wait_workspace)

    async def resume(self, run_id: str, on_event: Callable[[Event], None] | None = None) -> RunResult:
        """Continue a run that is waiting, queued, or failed because its owner died, from its
        stream (``agentform resume``): what finished is not executed again. RunTakenOver when
        another process continues it; RunError when it cannot be resumed."""
        from agentform.engine.runtime.runner import resume_run_async

        return await resume_run_async(self.store, self.store.get_run(run_id).id, home=self.home,
                                      on_event=on_event)

    async def approve(self, run_id: str, *, approve: bool = True, by: str | None = None,
                      message: str | None = None, stage: str | None = None,
                      on_event: Callable[[Event], None] | None = None) -> RunResult:
        """Answer a waiting approval (``approve=False`` rejects) and continue the run here, as
        ``agentform approve``; ``by`` defaults to the OS user."""
        from agentform.engine.runtime.approvals import os_user, resolve_approval_async

        return await resolve_approval_async(self.store, run_id, approve=approve, by=by or os_user(),
                                            message=message, home=self.home, stage=stage, on_event=on_event)

    def pending_approvals(self, run_id: str) -> list[Event]:
        """The ``approval.requested`` events of a run not answered yet (stage, message, expiresAt)."""
        from agentform.engine.runtime.approvals import pending_approvals

        return pending_approvals(self.store.read_events(self.store.get_run(run_id).id))

    def cancel(self, run_id: str) -> tuple[RunRecord, bool]:
        """Cancel a run (``agentform cancel``): (its record, whether its live owner was asked to
        stop, which it does within a second) or recorded here when nobody executes it."""
        from agentform.engine.runtime.runner import cancel_run

        return cancel_run(self.store, run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """A run's record by id or unique prefix (a passed approval deadline is recorded first)."""
        from agentform.engine.runtime.liveness import observe_run

        return observe_run(self.store, self.store.get_run(run_id))

    # -- replay, export, fork (engine/runtime/replay.py, recordings.py, fork.py) --------------------

    async def replay(self, run_or_file: str | Path, revision: str = "pinned") -> Any:
        """Execute a recorded run again, every model and tool response served from its stream
        (``agentform replay``), in memory, and compare path by path: a ReplayReport (``same``,
        ``divergence``, ``exit_code`` 0 or 1). ``run_or_file``: a run id (or prefix) of this
        store, or a file ``export_run`` wrote; ``revision="current"`` runs the manifests applied now."""
        from agentform.engine.errors import UsageError
        from agentform.engine.graph import Graph
        from agentform.engine.runtime import recordings
        from agentform.engine.runtime.replay import replay
        from agentform.engine.runtime.runner import load_graph

        if revision not in ("pinned", "current"):
            raise UsageError(f"--revision {revision!r}: use pinned (the run's own) or current")
        file = Path(run_or_file)
        if isinstance(run_or_file, Path) or file.is_file():
            recording = recordings.read(file)
        else:
            recording = await asyncio.to_thread(recordings.from_store, self.store, str(run_or_file))
        if revision == "current":
            graph, number = load_graph(self.store, recording.key)
        elif recording.graph is not None:
            graph, number = Graph.model_validate(recording.graph), recording.revision
        elif isinstance(run_or_file, Path) or file.is_file():
            raise UsageError(f"{file} carries no pinned revision (a `logs -o jsonl` file): replay it with "
                             "--revision current, or write it with `agentform logs RUN --export FILE`")
        else:
            graph, number = load_graph(self.store, recording.key, recording.revision)
        return await replay(recording, graph, number, home=self.home)

    def export_run(self, run_id: str, file: str | Path) -> tuple[str, int]:
        """Write a run's stream with its pinned graph to ``file`` (``logs RUN --export FILE``), for
        ``replay FILE`` on any store; (run id, number of events)."""
        from agentform.engine.runtime import recordings

        return recordings.export(self.store, run_id, Path(file))

    async def fork(self, run_id: str, at_seq: int, revision: str = "current",
                   on_event: Callable[[Event], None] | None = None) -> RunResult:
        """A new run that keeps ``run_id``'s stream up to ``at_seq`` as its past and continues live
        (``agentform fork``) on the current revision or the run's ``original`` one."""
        from agentform.engine.runtime.fork import fork_run

        return await fork_run(self.store, run_id, at_seq, revision=revision, home=self.home, on_event=on_event)

    async def events(self, run_id: str, after: int = 0, follow: bool = False,
                     poll: float = 1.0) -> AsyncIterator[Event]:
        """The run's events from ``after + 1`` on; ``follow`` waits for more until the run finishes."""
        run_id = self.store.get_run(run_id).id
        if follow:   # one reader per run in this process, however many follow it (engine/followers.py)
            async for event in self._hub().follow(run_id, after):
                yield event
            return
        while True:
            if follow:
                batch = await asyncio.to_thread(self.store.wait_for_events, run_id, after, poll)
            else:
                batch = await asyncio.to_thread(self.store.read_events, run_id, after)
            for event in batch:
                after = event.seq
                yield event
            if not follow:
                return
            # A terminal event ends a segment, not always the stream (a resume may follow it).
            if (not batch or batch[-1].type in FINISHED) and \
                    not await asyncio.to_thread(self._may_continue, run_id, after):
                return

    def _may_continue(self, run_id: str, after: int) -> bool:
        from agentform.engine.runtime.liveness import observe_run, owner_alive

        run = observe_run(self.store, self.store.get_run(run_id))
        if run.last_seq > after:
            return True
        if run.status in ("succeeded", "failed", "cancelled") and run.finished_at is not None:
            return False
        return run.status != "running" or owner_alive(run)

    # -- secrets (`agentform secret ...`): the home's key pairs; no store is opened -----------------

    def secret_keygen(self) -> Any:
        """Make the engine's key pair under ``<home>/keys/`` (private key 0600); never replaces one."""
        from agentform.engine.secret_keys import keygen

        return keygen(self.home)

    def secret_public_key(self) -> tuple[str, str]:
        """(key id, PEM) of the public key values are sealed for: safe to commit and share."""
        from agentform.engine.secret_keys import public_key

        return public_key(self.home)

    def secret_seal(self, value: str, *, name: str, namespace: str = "default",
                    public_key: bytes | None = None) -> Any:
        """``value`` sealed (``afs2:``) for the Secret ``namespace/name``: for the engine's key, or
        for the PEM ``public_key`` (no home needed). ``.manifest()`` is the Secret to commit."""
        from agentform.engine.secret_keys import seal

        return seal(value, namespace=namespace, name=name, home=self.home, public_key_pem=public_key)

    def secret_rotate(self, path: str | Path | None = None) -> Any:
        """A new current key pair (old ones kept by id); the sealed Secrets under ``path``
        re-sealed for it in place, comments and formatting kept."""
        from agentform.engine.secret_keys import rotate

        return rotate(self.home, Path(path) if path is not None else None)

    # -- queued runs and workers (`run --detach`, `agentform worker`) ------------------------------

    async def enqueue(self, target: str, input: Any = None, params: dict[str, Any] | None = None,
                      thread: str | None = None, queue: str | None = None) -> RunRecord:
        """Queue a run of ``target`` (``run --detach``): recorded as ``queued`` with ``run.queued``
        and its revision pinned now. On PostgreSQL a worker executes it (a procrastinate job in
        the store's schema, on ``queue``); on SQLite a background process of its own does."""
        from agentform.engine.workers import queue as q

        if not q.is_postgres(self.store):
            if queue is not None:
                from agentform.engine.errors import UsageError

                raise UsageError("--queue needs PostgreSQL workers; on SQLite the run executes in a background process")
            from agentform.engine.workers.detached import spawn

            run = await asyncio.to_thread(q.create_queued_run, self.store, target, input=input,
                                          params=params, thread=thread)
            spawn(self.store, self.home, run.id)
            return run
        if getattr(self, "_queue", None) is None:
            self._queue = q.RunQueue(self.store)
        return await asyncio.to_thread(self._queue.enqueue, target, input=input, params=params, thread=thread,
                                       queue=queue or q.DEFAULT_QUEUE)

    def live_workers(self) -> int | None:
        """Workers with a heartbeat within the lease (None on SQLite, which has no workers)."""
        from agentform.engine.workers import queue as q

        return q.live_workers(self.store) if q.is_postgres(self.store) else None

    async def worker(self, concurrency: int = 4, queues: list[str] | None = None, *, wait: bool = True,
                     drain_timeout: float = 30.0, metrics_port: int | None = None,
                     metrics_host: str = "127.0.0.1") -> Any:
        """Execute queued runs until SIGTERM/SIGINT (``agentform worker``; PostgreSQL only), or with
        ``wait=False`` until the queue is empty; SIGTERM drains (see engine/workers/worker.py).
        ``metrics_port``: serve this process's metrics at ``http://HOST:PORT/metrics`` meanwhile."""
        from agentform.engine import notify
        from agentform.engine.workers.worker import run_worker

        if wait and (found := notify.dispatcher(self.store)) is not None:
            found.start(sweep=True)   # webhooks other processes left pending are retried here too
        server = None
        if metrics_port is not None:
            from agentform.engine.errors import UsageError
            from agentform.engine.process_metrics import serve_http

            try:
                server = serve_http(metrics_host, metrics_port)
            except OSError as exc:
                raise UsageError(f"--metrics-port {metrics_port}: cannot listen on {metrics_host}: {exc}") from exc
        try:
            return await run_worker(self.store, self.home, concurrency=concurrency, queues=queues, wait=wait,
                                    drain_timeout=drain_timeout)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    # -- GitOps: `watch`, apps (engine/gitops/) ------------------------------------------------------

    def _gitops_source(self, path: str | Path | None, git: str | None, ref: str, subpath: str | None,
                       app: str | None, prune: bool, credentials_file: str | Path | None) -> Any:
        from agentform.engine.errors import UsageError
        from agentform.engine.gitops import git as g
        from agentform.engine.gitops.watch import FolderWatch, GitWatch
        from agentform.engine.reconcile import default_app

        if (path is None) == (git is None):
            raise UsageError("watch takes a folder (PATH) or --git URL, not both")
        if git is None:
            folder = Path(path)
            if not folder.is_dir():
                raise UsageError(f"watch {folder}: not a folder")
            return FolderWatch(folder, app or default_app(folder), prune)
        source = g.GitSource(git, ref, self.home, subpath, g.load_credentials(credentials_file))
        return GitWatch(source, app or g.default_app(source.url, subpath), prune)

    def sync(self, path: str | Path | None = None, *, git: str | None = None, ref: str = "HEAD",
             subpath: str | None = None, app: str | None = None, prune: bool = False,
             credentials_file: str | Path | None = None) -> Any:
        """One sync of a folder or a git ref (``watch --once``): a SyncResult, recorded in the app's
        status; a commit that does not validate is not applied (outcome ``invalid``)."""
        watch = self._gitops_source(path, git, ref, subpath, app, prune, credentials_file)
        return watch.sync(self.store, self.home)

    async def watch(self, path: str | Path | None = None, *, git: str | None = None, ref: str = "HEAD",
                    subpath: str | None = None, app: str | None = None, prune: bool = False,
                    interval: float = 60.0, credentials_file: str | Path | None = None,
                    on_sync: Callable[[Any], None] | None = None, stop: asyncio.Event | None = None,
                    refresh: asyncio.Event | None = None) -> None:
        """The GitOps loop (``agentform watch``) until ``stop`` is set: a folder is synced on every
        change (watchfiles), a git ref every ``interval`` seconds (at least 5) or when ``refresh``
        is set. Each sync's SyncResult goes to ``on_sync`` (see engine/gitops/)."""
        from agentform.engine.gitops.watch import GitWatch, check_interval, watch_folder, watch_git

        watch = self._gitops_source(path, git, ref, subpath, app, prune, credentials_file)
        if isinstance(watch, GitWatch):
            await watch_git(self.store, watch, home=self.home, interval=check_interval(interval),
                            on_sync=on_sync, stop=stop, refresh=refresh)
        else:
            await watch_folder(self.store, watch, home=self.home, on_sync=on_sync, stop=stop)

    def apps(self) -> list[Any]:
        """Every app (applied by hand or watched): AppStatus with the commit and revision in force
        and the last error of ``watch`` with its commit and time (``get app``)."""
        from agentform.engine.gitops.status import apps

        return apps(self.store)

    def app_status(self, name: str) -> Any:
        """One app's AppStatus (``get app NAME``); NotFound when no app has that name."""
        from agentform.engine.gitops.status import app_status

        return app_status(self.store, name)

    # -- serve: start, followers, tokens, audit, cost, metrics ---------------------------------------

    async def start(self, target: str, input: Any = None, params: dict[str, Any] | None = None,
                    thread: str | None = None) -> RunRecord:
        """Start a run without waiting for it (``POST /api/v1/runs``); its record, ``queued``. On
        PostgreSQL it is queued for the workers (as ``enqueue``); on SQLite it executes in this
        process, as a task of the running event loop (the serving process is its owner)."""
        from agentform.engine.workers import queue as q

        if q.is_postgres(self.store):
            return await self.enqueue(target, input=input, params=params, thread=thread)
        run = await asyncio.to_thread(q.create_queued_run, self.store, target, input=input, params=params,
                                      thread=thread)
        started = self.__dict__.setdefault("_started", set())
        task = asyncio.get_running_loop().create_task(self._execute_started(run.id), name=f"agentform-run-{run.id}")
        started.add(task)
        task.add_done_callback(started.discard)
        return run

    async def drain_started(self, timeout: float = 30.0) -> int:
        """Wait up to ``timeout`` s for the runs ``start`` executes in this process to end (a
        stopping server lets them finish); those still running then are cancelled (recorded
        as ``run.cancelled``). How many had to be cancelled."""
        started = list(self.__dict__.get("_started", ()))
        if not started:
            return 0
        _, pending = await asyncio.wait(started, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
        return len(pending)

    async def _execute_started(self, run_id: str) -> None:
        import logging

        from agentform.engine.workers.execute import execute_queued

        try:
            await execute_queued(self.store, run_id, home=self.home)
        except Exception:   # the run's stream records how it ended; nothing awaits this task
            logging.getLogger("agentform.serve").exception("run %s stopped", run_id)

    def _hub(self) -> Any:
        """This event loop's followers hub (engine/followers.py), made at first use."""
        import weakref

        from agentform.engine.followers import Hub
        from agentform.engine.metrics import Histogram

        hubs = self.__dict__.setdefault("_hubs", weakref.WeakKeyDictionary())
        self.__dict__.setdefault("_latency", Histogram())
        loop = asyncio.get_running_loop()
        if loop not in hubs:
            hubs[loop] = Hub(self.store, self._may_continue, on_latency=self._latency.observe)
        return hubs[loop]

    def event_batches(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        """``events(follow=True)`` by the batch: the events there at each wake as one list (SSE
        writes a batch to a client in one send). ``run_id`` is a run's full id."""
        return self._hub().batches(run_id, after)

    @staticmethod
    def redact(value: Any) -> Any:
        """``value`` (text or JSON-like data) with every secret value this process knows masked:
        what faces pass their answers through."""
        from agentform.engine.redaction import redact_data

        return redact_data(value)

    def learn_secrets(self) -> int:
        """Read every applied Secret this process can resolve, so that the redactor masks their
        values in whatever a face serves, streams other processes wrote included; how many."""
        from agentform.engine.secrets import SecretSource, resolve

        learned = 0
        for record in self.store.list_resources("Secret", None):
            try:
                resolve(SecretSource.from_document(record.spec), home=self.home)   # registers the value
            except Exception:   # noqa: BLE001 - a value this process cannot read cannot leak from it
                continue
            learned += 1
        return learned

    def followers(self) -> int:
        """Followers of run streams (SSE subscribers, ``logs -f``) this Engine serves now."""
        return sum(h.followers for h in self.__dict__.get("_hubs", {}).values())

    def token_create(self, scopes: list[str], *, namespace: str | None = None, name: str = "") -> Any:
        """A new API token (``token create``): a CreatedToken whose ``token`` is shown this once."""
        from agentform.engine import tokens

        return tokens.create(self.store, scopes, namespace=namespace, name=name)

    def tokens(self) -> list[Any]:
        """Every API token's record (TokenInfo: id, name, scopes, namespace, created, last used, revoked)."""
        from agentform.engine import tokens

        return tokens.list_tokens(self.store)

    def token_revoke(self, token_id: str) -> Any:
        from agentform.engine import tokens

        return tokens.revoke(self.store, token_id)

    def token_verify(self, token: str) -> Any:
        """The TokenInfo of a presented token, or None (unknown, malformed, wrong, revoked)."""
        from agentform.engine import tokens

        verifier = self.__dict__.get("_verifier")
        if verifier is None:
            verifier = self.__dict__["_verifier"] = tokens.Verifier(self.store)
        return verifier.verify(token)

    def audit_record(self, *, token_id: str | None, action: str, target: str, source: str, status: int,
                     detail: str = "") -> None:
        from agentform.engine import audit

        audit.record(self.store, token_id=token_id, action=action, target=target, source=source, status=status,
                     detail=detail)

    def audit_log(self, token_id: str | None = None, limit: int = 100) -> list[Any]:
        """The audit log of writes through ``serve``, newest first (AuditEntry)."""
        from agentform.engine import audit

        return audit.read(self.store, token_id=token_id, limit=limit)

    def memory(self, target: str, namespace: str = "default") -> Any:
        """The notes the ``memory`` built-in keeps for ``team/NAME`` (or ``agent/NAME``), as
        ``agentform memory`` lists them: a MemoryScope."""
        from agentform.engine.store.memory import memory_scope

        return memory_scope(self.store, target, namespace)

    def cost(self, by: str = "model", since: float | str | None = None) -> Any:
        """Tokens and USD from the streams' usage events, grouped ``by`` model, agent, team,
        pipeline or target, since an epoch time or a duration back from now (``24h``): a CostReport."""
        from agentform.engine.cost import cost_report

        return cost_report(self.store, by=by, since=since)

    def gc(self, older_than: str | None = None, *, dry_run: bool = False) -> Any:
        """Delete finished runs that ended more than ``older_than`` ago (default: ``retention:``
        of ``<home>/config.yaml``, else 30d), their events and artifacts, keeping whole threads
        and forks' origins; ``dry_run`` deletes nothing. A GcReport (engine/retention.py)."""
        from agentform.engine.retention import collect

        return collect(self.store, self.home, older_than, dry_run=dry_run)

    def metrics(self) -> str:
        """The Prometheus text of ``/metrics``: store-derived counts plus this process's followers."""
        from agentform.engine.metrics import Histogram, render, snapshot
        from agentform.engine.process_metrics import PROCESS

        latency = self.__dict__.setdefault("_latency", Histogram())
        return render(snapshot(self.store), subscribers=self.followers(), latency=latency) + PROCESS.text()

    @staticmethod
    def process_metrics() -> str:
        """This process's own metrics (what ``worker --metrics-port`` serves): model and tool call
        latency, event commit latency, runs it ended and executes (engine/process_metrics.py)."""
        from agentform.engine.process_metrics import PROCESS

        return PROCESS.text()

    def ping_store(self) -> None:
        """Raise StoreError unless the store answers a query (``/readyz``)."""
        from agentform.engine.errors import StoreError

        try:
            with self.store._read() as cur:
                cur.execute("SELECT 1").fetchone()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"state store: {exc}") from exc

    async def aclose(self) -> None:
        """``close`` from async code."""
        self.close()

    def version(self) -> dict[str, Any]:
        """``agentform --version``: this agentform's version, the store's schema version (the
        highest migration applied; None for a store not created yet) and the newest schema this
        agentform knows. A store not opened yet is only read, neither created nor migrated."""
        from agentform import __version__
        from agentform.engine.store.migrate import known_version, probe_version

        if self._store is not None:
            with self._store._read() as cur:   # an open store is migrated already
                applied = cur.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
            dialect = "postgres" if type(self._store).__name__.startswith("Postgres") else "sqlite"
        else:
            dialect, applied = probe_version(self._store_url, self.home)
        return {"version": __version__, "storeSchema": applied, "knownSchema": known_version(dialect),
                "store": dialect}

    def close(self) -> None:
        for hub in list(self.__dict__.get("_hubs", {}).values()):
            hub.close()
        if self._store is not None:   # first attempts of webhooks this process recorded, bounded
            from agentform.engine import notify

            if self._owns_store:
                notify.detach(self._store)
            elif (found := notify.dispatcher(self._store)) is not None:
                found.close(reopen=True)   # the store's owner may close it next
        if self._owns_store and self._store is not None:
            self._store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
