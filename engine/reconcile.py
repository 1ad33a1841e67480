"""Apply: validate, plan, run the operators in dependency order, compile graphs, record a revision.

One apply holds the store's apply lock throughout, writes the revision with every
resource change and graph in one transaction (``commit_revision``), and then only
status updates. Unchanged manifests are a no-op: no revision is recorded.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentform.engine.desired import Desired, from_manifest_set
from agentform.engine.errors import AgentformError, ManifestError, UsageError
from agentform.engine.hashing import digest
from agentform.engine.plan import Plan, display_name, make_plan
from agentform.engine.planfile import PLAN_KEY, check_fresh, is_plan_file, load_plan
from agentform.engine.store.base import AppliedResource, Condition, RevisionRecord, Store
from agentform.operators.base import OperatorContext, condition, failed, operator_for
from agentform.specs import ResourceKey

if TYPE_CHECKING:
    from agentform.engine.graph import Graph


class PruneRefused(AgentformError):
    """Prune would be unsafe (a file failed to load, or everything would go)."""


@dataclass
class Outcome:
    key: ResourceKey
    verb: str                               # created | configured | unchanged | deleted | orphaned
    ready: Condition | None = None

    @property
    def line(self) -> str:
        return f"{display_name(self.key)} {self.verb}"


@dataclass
class ApplyResult:
    plan: Plan
    revision: RevisionRecord | None
    outcomes: list[Outcome] = field(default_factory=list)
    failed: list[tuple[ResourceKey, Condition]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what prune teardowns did (kept data, where)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def no_changes(self) -> bool:
        return self.revision is None and not self.plan.has_changes

    def error_lines(self) -> list[str]:
        """One ``error: <resource>: Ready=False <reason>: <message>`` line per failed resource."""
        from agentform.engine.errors import printable
        from agentform.engine.plan import display_name

        return [f"error: {display_name(key)}: Ready=False {ready.reason}: {printable(ready.message)}"
                for key, ready in self.failed]


def author_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def default_app(path: Path) -> str:
    """The app an apply belongs to by default: an overlay's metadata.name, else the applied folder's name."""
    from agentform.engine.overlays import overlay_name

    path = Path(path).resolve()
    return overlay_name(path) or (path if path.is_dir() else path.parent).name or "default"


def load_valid(path: Path):
    """validate_path, raising ManifestError (nothing applied) when any error was found."""
    from agentform.engine.validation import validate_path

    manifests = validate_path(Path(path))
    if not manifests.ok:
        raise ManifestError([d for d in manifests.diagnostics if d.severity == "error"])
    return manifests


def apply_path(store: Store, path: Path | str, *, home: Path, app: str | None = None, prune: bool = False,
               prune_all: bool = False, lock_timeout: float = 0.0, expect_digest: str | None = None,
               clock: Callable[[], float] = time.time, prune_data: bool = False) -> ApplyResult:
    """Apply the manifests under ``path`` (or a saved plan file, checked against ``expect_digest``)."""
    path = Path(path)
    plan_file = is_plan_file(path)
    if expect_digest is not None and not plan_file:
        raise UsageError(f"--expect-digest checks a plan file saved by `plan --out`; {path} is not one")
    author = author_name()
    holder = f"{author}@{socket.gethostname()} (pid {os.getpid()}, apply {path})"
    with store.apply_lock(holder, timeout=lock_timeout):
        # The first apply creates the key that signs plan files (CONTRACT section 8).
        key = store.hmac_key(PLAN_KEY)
        if plan_file:
            saved = load_plan(path, key=key, expect_digest=expect_digest)
            plan = make_plan(saved.desired, store, saved.app, prune=saved.prune, home=home)
            check_fresh(saved, plan, path)
            root, failed_files = Path(saved.root or path.parent), saved.failed_files
        else:
            manifests = load_valid(path)
            plan = make_plan(from_manifest_set(manifests), store, app or default_app(path),
                             prune=prune, home=home)
            root, failed_files = path, list(manifests.failed_files)
        check_prune(plan, store, failed_files=failed_files, prune_all=prune_all)
        return execute(store, plan, home=home, root=root, author=author, clock=clock, prune_data=prune_data)


def check_prune(plan: Plan, store: Store, *, failed_files: list[str], prune_all: bool) -> None:
    """Refuse a prune that could delete by mistake (nothing is applied then)."""
    deletes = plan.of("delete")
    if not deletes:
        return
    if failed_files:
        raise PruneRefused(
            f"prune refused: {len(failed_files)} file(s) failed to load ({', '.join(failed_files[:3])}); "
            "their resources would look deleted. Fix them, or apply without --prune"
        )
    inventory = store.inventory(plan.app)
    if not prune_all and len(deletes) >= len(inventory) and not plan.desired:
        raise PruneRefused(
            f"prune refused: it would delete every resource of app '{plan.app}' ({len(deletes)}); "
            "pass --prune-all if that is intended"
        )


def execute(store: Store, plan: Plan, *, home: Path, root: Path, author: str,
            clock: Callable[[], float] = time.time, prune_data: bool = False) -> ApplyResult:
    """Carry out ``plan``: operators, graphs, one revision, then statuses."""
    if not plan.has_changes:
        return _noop(plan)
    applied = plan.applied
    ctx = OperatorContext(home=Path(home), desired={d.key: d for d in plan.desired}, prune_data=prune_data)
    # Under the apply lock the next revision's number is known: operators record what they built at it.
    ctx.next_revision = next((r.number + 1 for r in store.list_revisions(limit=1)), 1)
    graphs = _compile_all(plan.desired, ctx)
    changing = {c.key: c.action for c in plan.changes if c.action in ("create", "update", "drift")}
    conditions: dict[ResourceKey, list[Condition]] = {}
    _probe_tool_servers(ctx, [d for d in plan.desired if d.key.kind == "ToolServer" and d.key in changing])
    for d in plan.desired:  # KINDS order: what a resource refers to is provisioned first
        if d.key in changing or d.key.kind == "Model":
            conditions[d.key] = _provision(ctx, d)
    for change in plan.of("delete"):
        operator_for(change.key.kind).teardown(ctx, applied[change.key])
    tool_pins = _pin_tools(store, plan, ctx, conditions, changing)

    upserts = [_record(d, applied.get(d.key), plan.app, conditions[d.key])
               for d in plan.desired if changing.get(d.key) in ("create", "update")]
    previous = _previous_graph_hashes(store, plan.app)
    graph_hashes = {str(k): digest(g.model_dump(mode="json", by_alias=True)) for k, g in graphs.items()}
    to_store = {k: g.model_dump(mode="json", by_alias=True) for k, g in graphs.items()
                if changing.get(k) in ("create", "update") or previous.get(str(k)) != graph_hashes[str(k)]}
    from agentform.engine.gitinfo import git_info

    git = git_info(root)
    revision = store.commit_revision(
        RevisionRecord(
            number=0, content_hash=plan.content_hash, app=plan.app, author=author, created_at=clock(),
            git_commit=git.commit, git_dirty=git.dirty,
            changes=[c.to_dict() for c in plan.changes],
            extra={"prices": _prices(plan.desired), "graphs": graph_hashes, "root": str(Path(root).resolve()),
                   "toolPins": tool_pins},
        ),
        upserts, [c.key for c in plan.of("delete")], to_store,
    )
    # Statuses of resources whose spec did not change (drift repaired, model pricing).
    for key, conds in conditions.items():
        record = applied.get(key)
        if changing.get(key) not in ("create", "update") and record is not None and record.conditions != conds:
            store.set_status(key, conds, record.generation)
    result = _result(plan, revision, conditions, changing)
    result.notes = ctx.notes
    return result


def _noop(plan: Plan) -> ApplyResult:
    """Nothing changed: no revision. Resources that stay not Ready still fail the command."""
    result = ApplyResult(plan, None)
    for d in plan.desired:
        ready = condition(plan.applied[d.key].conditions)
        if ready is not None and ready.status == "False":
            result.failed.append((d.key, ready))
    result.outcomes = [Outcome(c.key, "orphaned") for c in plan.of("orphan")]
    return result


def _provision(ctx: OperatorContext, desired: Desired) -> list[Condition]:
    try:
        return operator_for(desired.key.kind).provision(ctx, desired)
    except AgentformError as exc:
        return failed("ProvisionFailed", str(exc))
    except Exception as exc:  # noqa: BLE001 - one failing operator must not stop the others
        return failed("OperatorError", f"{type(exc).__name__}: {exc}")


def _compile_all(desired: list[Desired], ctx: OperatorContext) -> dict[ResourceKey, Graph]:
    # Imported here: a no-op apply never compiles, so it never builds the graph models.
    from agentform.engine.compile import RUNNABLE, Index, compile_graph, models_under_cost_cap

    index = Index.of_desired(desired)
    for d in desired:
        if d.key.kind in RUNNABLE:
            try:
                ctx.graphs[d.key] = compile_graph(d, index)
            except (ManifestError, UsageError, ValueError) as exc:
                ctx.compile_errors[d.key] = str(exc)
    for graph in ctx.graphs.values():
        ctx.priced_models |= models_under_cost_cap(graph)
    return ctx.graphs


def _record(d: Desired, current: AppliedResource | None, app: str, conds: list[Condition]) -> AppliedResource:
    generation = 1 if current is None else current.generation + 1
    return AppliedResource(key=d.key, app=app, spec=d.document, spec_hash=d.spec_hash,
                           generation=generation, observed_generation=generation, conditions=conds,
                           source=d.source, labels=d.labels)


def _previous_graph_hashes(store: Store, app: str) -> dict[str, str]:
    for revision in store.list_revisions(limit=20):
        if revision.app == app:
            return dict(revision.extra.get("graphs", {}))
    return {}


def _probe_tool_servers(ctx: OperatorContext, items: list[Desired]) -> None:
    # All at once: a server takes about a second to start; their operator reads the results.
    if items:
        from agentform.operators.toolserver import probe_all

        probe_all(ctx, items)


def _pin_tools(store: Store, plan: Plan, ctx: OperatorContext, conditions: dict[ResourceKey, list[Condition]],
               changing: dict[ResourceKey, str]) -> dict[str, dict[str, str]]:
    """The tool pins of this revision (engine/toolpins.py), put into every graph that uses the
    server: fresh where this apply reached a server, else kept from the app's previous revision
    while the server's spec is unchanged (an unrelated apply never re-pins a server behind the
    user's back). Tool-name clashes mark the ToolServer (or the Agent) that brought them."""
    from agentform.engine.graph import node_key
    from agentform.operators.toolserver import CLASH, clashes

    previous: dict[str, dict[str, str]] = {}
    for revision in store.list_revisions(limit=20):
        if revision.app == plan.app:
            previous = dict(revision.extra.get("toolPins", {}))
            break
    pins: dict[str, dict[str, str]] = {}
    for d in plan.desired:
        key = node_key(d.key.namespace, d.key.name)
        if d.key.kind != "ToolServer":
            continue
        if key in ctx.tool_pins:
            pins[key] = ctx.tool_pins[key]
        elif key in previous and changing.get(d.key) in (None, "drift"):
            pins[key] = previous[key]
    for agent, server, message in clashes(ctx, pins):
        blame = server if server in conditions else agent if agent in conditions else None
        if blame is not None:
            before = condition(conditions[blame])
            if before is not None and before.reason == CLASH and message not in before.message:
                message = f"{before.message}; {message}"
            conditions[blame] = failed(CLASH, message)
    for key, graph in ctx.graphs.items():
        used = {s: pins[s] for s in graph.tool_servers if s in pins}
        if used:
            ctx.graphs[key] = graph.model_copy(update={"tool_pins": used})
    return pins


def _prices(desired: list[Desired]) -> dict[str, dict | None]:
    from agentform.engine.graph import node_key
    from agentform.engine.prices import price_of

    out: dict[str, dict | None] = {}
    for d in desired:
        if d.key.kind == "Model":
            price = price_of(d.resource.spec)  # type: ignore[attr-defined]
            out[node_key(d.key.namespace, d.key.name)] = price.to_dict() if price else None
    return out


def _result(plan: Plan, revision: RevisionRecord, conditions: dict[ResourceKey, list[Condition]],
            changing: dict[ResourceKey, str]) -> ApplyResult:
    result = ApplyResult(plan, revision)
    verbs = {"create": "created", "update": "configured", "drift": "configured"}
    for d in plan.desired:
        ready = condition(conditions.get(d.key, []))
        result.outcomes.append(Outcome(d.key, verbs.get(changing.get(d.key, ""), "unchanged"), ready))
        if ready is not None and ready.status == "False":
            result.failed.append((d.key, ready))
    for change in plan.changes:
        if change.action in ("delete", "orphan"):
            result.outcomes.append(Outcome(change.key, "deleted" if change.action == "delete" else "orphaned"))
    return result
