"""The engine image, built once per session on the harness's podman (tests/containers/podman.py)."""

from __future__ import annotations

import pytest

from tests.containers.podman import PodmanUnavailable, docker_host, podman  # noqa: F401  (session fixtures)

from .images import engine_image, python_base, wheelhouse


@pytest.fixture(scope="session")
def image(podman, tmp_path_factory):  # noqa: F811
    """(PodmanService, tag) of deploy/Dockerfile built over the host's Python, offline."""
    work = tmp_path_factory.mktemp("deploy-image")
    try:
        base = python_base(podman, work / "base")
        wheels = wheelhouse(work / "wheels", ("postgres",))
        (work / "context").mkdir()
        return podman, engine_image(podman, base, work / "context", wheels, "postgres")
    except PodmanUnavailable as exc:
        pytest.fail(f"the image could not be built: {exc}", pytrace=False)
