"""Fixtures of the reconcile tests: a manifest folder and the CLI against a fresh store."""

from __future__ import annotations

import pytest

from .helpers import Cli, demo_files, write


@pytest.fixture
def repo(tmp_path):
    """A manifest folder named ``demo`` (so the default app is ``demo``)."""
    return write(tmp_path / "demo", demo_files())


@pytest.fixture
def cli(tmp_path, store_url, repo):
    """The CLI against the per-backend store of ``store_url``, run from ``repo``."""
    return Cli(home=tmp_path / "home", store_url=store_url, cwd=repo)
