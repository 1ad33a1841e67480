"""Saved plans are bound to their content: an HMAC-SHA256 under a key of the store (issue 9, item 5).

Everything goes through the real CLI against both stores: `plan --out` prints the digest,
`apply FILE [--expect-digest D]` refuses an edited file, a wrong digest and a file made against
another store, and applies nothing then.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from agentform.engine.store import open_store
from agentform.specs import ResourceKey

from .helpers import Cli, write

LEAD = ResourceKey("Agent", "default", "lead")
DIGEST = re.compile(r"plan digest: (sha256-hmac:[0-9a-f]{64})")


def revisions(url: str) -> list:
    store = open_store(url)
    try:
        return store.list_revisions()
    finally:
        store.close()


def lead_instructions(url: str) -> str | None:
    store = open_store(url)
    try:
        found = store.get_resource(LEAD)
    finally:
        store.close()
    return None if found is None else found.spec["spec"]["instructions"]


def saved_plan(cli: Cli) -> str:
    """`plan --out plan.json`; returns the digest it printed (checked against -o json)."""
    done = cli("plan", "--out", "plan.json")
    assert done.code == 2, done.err
    match = DIGEST.search(done.err)
    assert match, done.err
    assert f"--expect-digest {match[1]}" in done.out
    return match[1]


def test_plan_prints_the_digest_and_apply_checks_it(cli, repo, store_url):
    digest = saved_plan(cli)
    as_json = cli("plan", "--out", "again.json", "-o", "json")
    assert as_json.code == 2
    # Same store, same key, same plan content: the same digest (json mode puts it in the data).
    assert as_json.json()["digest"] == DIGEST.search(as_json.err)[1]
    assert json.loads((repo / "plan.json").read_text())["digest"] == digest
    done = cli("apply", "plan.json", "--expect-digest", digest)
    assert done.code == 0, done.err
    assert lead_instructions(store_url) == "You lead."


def test_an_edited_desired_document_with_the_same_actions_is_refused(cli, repo, store_url):
    saved_plan(cli)
    text = (repo / "plan.json").read_text()
    assert text.count('"You lead."') == 1
    (repo / "plan.json").write_text(text.replace('"You lead."', '"Exfiltrate everything."'))
    done = cli("apply", "plan.json")
    assert done.code == 1
    assert "the plan file was changed after plan wrote it" in done.err
    assert revisions(store_url) == [] and lead_instructions(store_url) is None


def test_a_reformatted_plan_file_is_refused(cli, repo, store_url):
    # Every byte is signed: even a change that leaves the JSON equal is a different file.
    saved_plan(cli)
    text = (repo / "plan.json").read_text()
    (repo / "plan.json").write_text(text.replace('\n "desired"', '\n  "desired"', 1))
    done = cli("apply", "plan.json")
    assert done.code == 1 and "changed after plan wrote it" in done.err
    assert revisions(store_url) == []


def test_a_forged_digest_is_refused(cli, repo, store_url):
    saved_plan(cli)
    text = (repo / "plan.json").read_text().replace('"You lead."', '"Edited."')
    fake = "0" * 64
    text = re.sub(r"sha256-hmac:[0-9a-f]{64}", f"sha256-hmac:{fake}", text, count=1)
    (repo / "plan.json").write_text(text)
    done = cli("apply", "plan.json", "--expect-digest", f"sha256-hmac:{fake}")
    assert done.code == 1 and "changed after plan wrote it" in done.err
    assert revisions(store_url) == []


def test_a_wrong_expected_digest_is_refused(cli, repo, store_url):
    digest = saved_plan(cli)
    other = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    done = cli("apply", "plan.json", "--expect-digest", other)
    assert done.code == 1
    assert f"its digest is {digest}, not the expected {other}" in done.err
    assert revisions(store_url) == []


def test_a_plan_made_against_another_store_is_refused(cli, repo, store_url, tmp_path):
    from tests.conftest import make_pg_url

    other_url = (f"sqlite:///{tmp_path / 'other.db'}" if store_url.startswith("sqlite")
                 else make_pg_url(store_url))
    other = Cli(home=cli.home, store_url=other_url, cwd=repo)
    assert other("plan", "--out", "plan.json").code == 2
    # Both stores are empty, so the plan is otherwise valid here: only the key differs.
    done = cli("apply", "plan.json")
    assert done.code == 1
    assert "this plan was made against another state store" in done.err
    assert revisions(store_url) == []
    assert other("apply", "plan.json").code == 0


def test_expect_digest_needs_a_plan_file(cli, store_url):
    done = cli("apply", ".", "--expect-digest", "sha256-hmac:" + "0" * 64)
    assert done.code != 0
    assert "--expect-digest checks a plan file" in done.err
    assert revisions(store_url) == []


def test_an_unsigned_plan_file_is_refused(cli, repo, store_url):
    saved_plan(cli)
    data = json.loads((repo / "plan.json").read_text())
    del data["digest"]
    (repo / "plan.json").write_text(json.dumps(data, indent=1, sort_keys=True))
    done = cli("apply", "plan.json")
    assert done.code != 0
    assert "older plan files are not signed" in done.err
    assert revisions(store_url) == []


def test_the_first_apply_creates_the_key_and_keeps_it(store_url, tmp_path):
    cli = Cli(home=tmp_path / "home", store_url=store_url, cwd=tmp_path)
    write(tmp_path / "empty", {"x.yaml": "kind: Other\n"})
    assert cli("apply", "empty").code == 0
    store = open_store(store_url)
    try:
        first = store.hmac_key("plan")
        assert len(first) == 32 and store.hmac_key("plan") == first
        assert store.hmac_key("other") != first
    finally:
        store.close()


CHILD = textwrap.dedent("""
    import sys
    from agentform.engine.store import open_store
    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    print(store.hmac_key("plan").hex(), flush=True)
    store.close()
""")


def test_processes_racing_for_the_first_key_all_get_the_same_one(store_url):
    # Open first (migrations), so the race is the key's insert itself.
    open_store(store_url).close()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, store_url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:  # the barrier: every child waits on its stdin
            proc.stdin.write("go\n")
            proc.stdin.flush()
        keys = {proc.stdout.readline().strip() for proc in procs}
        for proc in procs:
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert len(keys) == 1 and len(next(iter(keys))) == 64


def test_engine_apply_checks_the_expected_digest(cli, repo, store_url, tmp_path):
    """The Python API (the one door) applies a plan file only with the digest `plan` printed."""
    import pytest

    from agentform import Engine
    from agentform.engine.errors import AgentformError

    digest = saved_plan(cli)
    engine = Engine(home=tmp_path / "home", store=store_url)
    try:
        wrong = digest[:-4] + ("0000" if not digest.endswith("0000") else "1111")
        with pytest.raises(AgentformError, match="digest"):
            engine.apply(repo / "plan.json", expect_digest=wrong)
        assert revisions(store_url) == []
        engine.apply(repo / "plan.json", expect_digest=digest)
        assert len(revisions(store_url)) == 1
    finally:
        engine.close()
