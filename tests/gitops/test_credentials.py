"""Git credentials reach git through GIT_ASKPASS only: never in the URL, the clone's config, the
store, a file under the home, or an error (a real git over smart HTTP with Basic auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentform import Engine

from .git_http import GitHttpServer
from .helpers import GOOD, Remote

TOKEN = "tok-s3cret-4f1c2b"


@pytest.fixture
def served(tmp_path: Path):
    remote = Remote(tmp_path / "srv")
    commit = remote.commit(GOOD, "good")
    server = GitHttpServer(remote.bare.parent, "robot", TOKEN)
    try:
        yield f"{server.url}/{remote.bare.name}", commit, server
    finally:
        server.close()


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_without_a_token_the_fetch_fails_and_nothing_applies(tmp_path: Path, served, monkeypatch):
    url, _, _ = served
    monkeypatch.delenv("AGENTFORM_GIT_TOKEN", raising=False)
    with Engine(home=tmp_path / "home", store=f"sqlite:///{tmp_path / 'state.db'}") as engine:
        result = engine.sync(git=url, ref="main")
        assert result.outcome == "failed"
        assert "git fetch of http://127.0.0.1:" in result.error
        assert engine.store.latest_revision() is None
        assert engine.app_status("manifests").error == result.error


def test_a_token_from_the_environment(tmp_path: Path, served, monkeypatch, store_url: str):
    url, commit, server = served
    home = tmp_path / "home"
    monkeypatch.setenv("AGENTFORM_GIT_TOKEN", TOKEN)
    monkeypatch.setenv("AGENTFORM_GIT_USERNAME", "robot")
    with Engine(home=home, store=store_url) as engine:
        result = engine.sync(git=url, ref="main")
        assert (result.outcome, result.commit) == ("applied", commit), result.error
        assert server.expected in server.seen          # git asked, the askpass script answered
        status = engine.app_status("manifests")
        assert TOKEN not in str(status.to_dict()) and TOKEN not in str(result.to_dict())
        assert TOKEN not in str(engine.store.latest_revision())
    assert _files_holding(home, TOKEN.encode()) == []   # clone config, askpass script, SQLite


def test_a_wrong_token_is_refused_and_not_echoed(tmp_path: Path, served, monkeypatch):
    url, _, _ = served
    wrong = "tok-wrong-9d8e7f"
    monkeypatch.setenv("AGENTFORM_GIT_TOKEN", wrong)
    home = tmp_path / "home"
    with Engine(home=home, store=f"sqlite:///{tmp_path / 'state.db'}") as engine:
        result = engine.sync(git=url, ref="main")
        assert result.outcome == "failed" and "Authentication failed" in result.error
        assert wrong not in result.error
    assert _files_holding(home, wrong.encode()) == []


def test_a_credentials_file_with_user_and_token(tmp_path: Path, served, monkeypatch):
    url, commit, server = served
    monkeypatch.delenv("AGENTFORM_GIT_TOKEN", raising=False)
    secret = tmp_path / "git-token"
    secret.write_text(f"robot:{TOKEN}\n")
    with Engine(home=tmp_path / "home", store=f"sqlite:///{tmp_path / 'state.db'}") as engine:
        result = engine.sync(git=url, ref="main", credentials_file=secret)
        assert (result.outcome, result.commit) == ("applied", commit), result.error
    empty = tmp_path / "empty"
    empty.write_text("\n")
    from agentform.engine.errors import UsageError

    with pytest.raises(UsageError, match="is empty"):
        Engine(home=tmp_path / "home").sync(git=url, credentials_file=empty)
