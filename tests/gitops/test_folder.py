"""`watch PATH`: watchfiles triggers validate + apply on change (real file events, both stores)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentform import Engine
from agentform.specs import ResourceKey

from .helpers import GOOD, agent, cli


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


async def test_a_folder_is_applied_on_every_change(tmp_path: Path, store_url: str):
    folder = tmp_path / "shop"
    _write(folder, GOOD)
    # The home inside the watched folder: its database changes on every sync and must not
    # trigger syncs of its own.
    engine = Engine(home=folder / ".agentform", store=store_url)
    results: asyncio.Queue = asyncio.Queue()
    seen: list = []
    stop = asyncio.Event()

    def on_sync(result) -> None:
        seen.append(result)
        results.put_nowait(result)

    async def next_change():
        # An editor's save can arrive as two batches: the second finds nothing to do.
        while True:
            result = await asyncio.wait_for(results.get(), timeout=60)
            if result.outcome != "unchanged":
                return result

    task = asyncio.create_task(engine.watch(folder, on_sync=on_sync, stop=stop))
    try:
        first = await next_change()
        assert (first.app, first.outcome, first.revision) == ("shop", "applied", 1)

        _write(folder, {"writer.yaml": agent("writer")})
        second = await next_change()
        assert (second.outcome, second.revision) == ("applied", 2), second.error
        assert "agent.agentform.dev/default/writer created" in second.lines

        _write(folder, {"editor.yaml": agent("editor", model="nope")})
        third = await next_change()
        assert (third.outcome, third.in_force) == ("invalid", 2)
        assert "unknown Model 'nope'" in third.error
        assert engine.store.get_resource(ResourceKey("Agent", "default", "editor")) is None
        assert engine.app_status("shop").phase == "Failed"

        _write(folder, {"editor.yaml": agent("editor")})
        fourth = await next_change()
        assert (fourth.outcome, fourth.revision) == ("applied", 3), fourth.error
        status = engine.app_status("shop")
        assert (status.phase, status.synced_revision, status.watched) == ("Synced", 3, True)
        assert "unknown Model 'nope'" in status.error     # the last error, kept with its time
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        engine.close()
    # Four changes, a few echoes at most; a loop on the home's own writes would make dozens.
    assert len(seen) < 8, [r.outcome for r in seen]


def test_watch_once_on_a_folder(tmp_path: Path, store_url: str):
    folder = tmp_path / "shop"
    _write(folder, GOOD)
    done = cli("watch", str(folder), "--once", home=tmp_path / "home", store=store_url)
    assert done.returncode == 0, done.stderr
    assert "app shop: applied as revision 1" in done.stdout
    _write(folder, {"x.yaml": "apiVersion: agentform.dev/v1alpha1\nkind: Agent\nmetadata: {name: x}\nspec: [\n"})
    done = cli("watch", str(folder), "--once", home=tmp_path / "home", store=store_url)
    assert done.returncode == 1 and "not applied, it does not validate; revision 1 in force" in done.stderr
    assert "Traceback" not in done.stderr


async def test_watching_an_overlay_watches_its_bases(tmp_path: Path, store_url: str):
    """An overlay loads folders outside its own: an edit in its base is a change to apply."""
    from .helpers import git

    repo = tmp_path / "repo"
    _write(repo / "base", GOOD)
    _write(repo / "overlays" / "ci", {"agentform.yaml": (
        "apiVersion: agentform.dev/v1alpha1\nkind: Overlay\nmetadata: {name: shop-ci}\n"
        "spec:\n  resources: [../../base]\n"
        "  patches:\n    - target: {kind: Agent}\n      patch: {metadata: {labels: {env: ci}}}\n")})
    git("init", "-q", "-b", "main", cwd=repo)       # an overlay's bases must be in its git work tree
    engine = Engine(home=tmp_path / "home", store=store_url)
    results: asyncio.Queue = asyncio.Queue()
    stop = asyncio.Event()

    async def next_change():
        while True:
            result = await asyncio.wait_for(results.get(), timeout=60)
            if result.outcome != "unchanged":
                return result

    task = asyncio.create_task(engine.watch(repo / "overlays" / "ci", on_sync=results.put_nowait, stop=stop))
    try:
        first = await next_change()
        assert (first.app, first.outcome, first.revision) == ("shop-ci", "applied", 1), first.error
        _write(repo / "base", {"writer.yaml": agent("writer")})      # outside the watched folder
        second = await next_change()
        assert (second.outcome, second.revision) == ("applied", 2), second.error
        writer = engine.store.get_resource(ResourceKey("Agent", "default", "writer"))
        assert writer is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        engine.close()
