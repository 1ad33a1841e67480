"""Workspaces of the docker backend over the session's podman, removed after each test."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import docker

from agentform.engine.workspaces.backend import WorkspaceConfig, WorkspaceLimits
from agentform.engine.workspaces.docker import DockerBackend, resource_name
from tests.containers.podman import BASE_IMAGE


class Rooms:
    """Makes workspaces under one engine home; ``close`` deletes them with their volumes."""

    def __init__(self, home: Path, docker_host: str):
        self.home = home
        self.backend = DockerBackend()
        self.client = docker.DockerClient(base_url=docker_host)
        self.made: list[WorkspaceConfig] = []

    def make(self, name: str = "room", *, provision: bool = True, **fields) -> WorkspaceConfig:
        limits = fields.pop("limits", WorkspaceLimits(timeout=20))
        ws = WorkspaceConfig("default", name, "docker", self.home, image=BASE_IMAGE, limits=limits)
        ws = replace(ws, **fields)
        self.made.append(ws)
        if provision:
            self.backend.provision(ws)
        return ws

    def container(self, ws: WorkspaceConfig):
        return self.client.containers.get(resource_name(ws))

    def sh(self, ws: WorkspaceConfig, command: str, **kw):
        return self.backend.run_command(ws, command, **kw)

    def close(self) -> None:
        for ws in self.made:
            try:
                self.backend.teardown(ws, delete_data=True)
            except Exception:  # noqa: BLE001 - best effort; the session's podman is removed anyway
                pass
        self.client.close()
