"""``agentform --version`` and a store migrated by a newer agentform."""

from __future__ import annotations

from agentform.engine.store.migrate import known_version

from .test_cli import af


def _dialect(store_url: str) -> str:
    return "postgres" if store_url.startswith("postgresql") else "sqlite"


def test_version_prints_the_version_and_the_store_schema(store, store_url, tmp_path):
    from agentform import __version__

    shown = af(tmp_path, store_url, "--version")
    assert shown.returncode == 0, shown.stderr
    known = known_version(_dialect(store_url))
    assert shown.stdout.splitlines() == [
        f"agentform {__version__}", f"store schema {known} ({_dialect(store_url)}; this agentform knows up to {known})"]


def test_version_does_not_create_a_store(tmp_path):
    shown = af(tmp_path / "home", "sqlite:///" + str(tmp_path / "none.db"), "--version")
    assert shown.returncode == 0, shown.stderr
    assert "store schema none yet (no store)" in shown.stdout
    assert not (tmp_path / "none.db").exists()


def test_a_store_with_a_newer_schema_is_refused(store, store_url, tmp_path):
    newer = known_version(_dialect(store_url)) + 1
    with store._write() as cur:
        cur.execute(store._q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
                    (newer, "from_the_future", 0.0))
    refused = af(tmp_path, store_url, "runs")
    assert refused.returncode == 1
    assert f"schema version {newer}, newer than this agentform knows ({newer - 1}); upgrade agentform" \
        in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    shown = af(tmp_path, store_url, "--version")
    assert shown.returncode == 1
    assert f"store schema {newer} " in shown.stdout and "upgrade agentform" in shown.stderr
