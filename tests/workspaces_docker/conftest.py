"""The docker backend's tests run against podman's Docker API (tests/containers/podman.py)."""

from __future__ import annotations

import pytest

from tests.containers.podman import docker_host, podman  # noqa: F401  (session fixtures)


@pytest.fixture
def docker_env(docker_host, monkeypatch):  # noqa: F811
    """DOCKER_HOST pointed at the session's podman, here and in child processes."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    return docker_host


@pytest.fixture
def rooms(docker_env, tmp_path):
    from .helpers import Rooms

    made = Rooms(tmp_path / "home", docker_env)
    yield made
    made.close()
