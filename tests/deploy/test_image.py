"""deploy/Dockerfile, built with podman over a locally built base (no registry, no network in
the build), runs `agentform --version` and a worker against the host's PostgreSQL."""

from __future__ import annotations

import asyncio

from agentform import Engine
from tests.pipeline.helpers import write_project


def _run(podman, *args: str, timeout: float = 180) -> str:
    return podman.podman("run", "--rm", "--pull=never", *args, timeout=timeout)


def test_the_image_prints_its_version_and_the_stores_schema(image, pg_store_url):
    podman, tag = image
    from agentform import __version__

    out = _run(podman, tag, "--version")
    assert out.splitlines()[0] == f"agentform {__version__}"
    assert "store schema none yet" in out   # the image's own home has no store
    engine = Engine(store=pg_store_url)
    try:
        assert engine.store is not None   # created and migrated here, on the host
        known = engine.version()["knownSchema"]
        assert engine.version()["storeSchema"] == known
    finally:
        engine.close()
    out = _run(podman, "--network=host", "-e", f"AGENTFORM_STORE={pg_store_url}", tag, "--version")
    assert f"store schema {known} (postgres; this agentform knows up to {known})" in out


def test_a_worker_in_the_image_executes_queued_runs_on_the_hosts_postgresql(image, pg_store_url, tmp_path):
    podman, tag = image
    folder = write_project(tmp_path / "m", script={"worker": [{"content": "done in a container"}]},
                           agents=["worker"], pipelines={})
    engine = Engine(tmp_path / "home", store=pg_store_url)

    async def queue_two():
        return [await engine.enqueue("agent/worker", input=f"task {i}") for i in range(2)]

    try:
        engine.apply(folder)
        queued = asyncio.run(queue_two())
        assert {r.status for r in queued} == {"queued"}
        # --once: the worker exits when the queue is empty.
        _run(podman, "--network=host", "--hostname=af-image-worker", "-e", f"AGENTFORM_STORE={pg_store_url}",
             tag, "worker", "--once", "--concurrency", "2")
        for run in queued:
            done = engine.get_run(run.id)
            assert (done.status, done.output) == ("succeeded", "done in a container")
            assert done.owner.startswith("af-image-worker:")   # executed in the container, not here
    finally:
        engine.close()
