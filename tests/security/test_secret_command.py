"""`agentform secret keygen | seal | public-key | rotate` through real CLI processes.

A value sealed on a machine without the engine's home (with the public key only) is used by a
run, as a stdio tool server's environment echoed back by a tool and as a Model's API key that
a fake provider prints back in its reply; neither the value nor its encodings reach the output,
the store or the home. A value moved to another Secret, or sealed for another key, is refused
with the reason; `rotate` keeps the old pair so that the applied revision still decrypts, and
re-seals a folder in place with everything but the sealed values kept byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from agentform.engine import sealing

from .provider import EchoProvider
from .test_leaks import CLI, HERE, doc, hits, store_rows

VALUE = f"sv-sealed-{secrets.token_hex(10)}"
OTHER = f"sv-other-{secrets.token_hex(10)}"


class Af:
    """``agentform --home HOME [--store URL] ...`` in a child process, every output kept."""

    def __init__(self, tmp_path: Path, home: Path, store_url: str | None = None, **env: str):
        self.cwd, self.home, self.store_url = tmp_path, home, store_url
        self.env = {k: v for k, v in os.environ.items() if k not in ("AGENTFORM_KEY_FILE", "AGENTFORM_KEY")}
        self.env.update(CI="true", LITELLM_LOCAL_MODEL_COST_MAP="True", **env)
        self.outputs: list[tuple[str, str]] = []

    def __call__(self, *args: str, stdin: str | None = None, code: int | None = 0) -> subprocess.CompletedProcess:
        store = ["--store", self.store_url] if self.store_url else []
        done = subprocess.run([*CLI, "--home", str(self.home), *store, *args], input=stdin, capture_output=True,
                              text=True, env=self.env, timeout=120, cwd=self.cwd)
        self.outputs.append((" ".join(args), done.stdout + done.stderr))
        if code is not None:
            assert done.returncode == code, (args, done.stdout, done.stderr)
        return done


def sealed_of(manifest: str) -> str:
    return re.search(r'sealed: "([^"]+)"', manifest).group(1)


def test_a_value_sealed_without_the_home_is_used_and_never_leaks(store_url, tmp_path):
    home = tmp_path / "home"
    af = Af(tmp_path, home, store_url)
    made = af("secret", "keygen")
    key_id = re.search(r"key ([0-9a-f]{16})", made.stdout).group(1)
    private = sealing.private_key_path(home)
    assert private.stat().st_mode & 0o777 == 0o600
    before = private.read_bytes()
    again = af("secret", "keygen", code=1)
    assert "never replaces" in again.stderr and private.read_bytes() == before
    (tmp_path / "engine.pub").write_text(af("secret", "public-key").stdout)

    # A laptop: no home, no store, only the public key that was committed.
    laptop = Af(tmp_path, tmp_path / "laptop-home")
    manifest = laptop("secret", "seal", "--name", "token", "--public-key", str(tmp_path / "engine.pub"),
                      stdin=VALUE + "\n").stdout
    assert not (tmp_path / "laptop-home").exists()
    assert sealed_of(manifest).startswith(f"afs2:{key_id}:")

    script = {"agents": {"toolman": [{"toolCalls": [{"name": "plain", "arguments": {}},
                                                    {"name": "environment", "arguments": {}}]},
                                     {"content": "done"}]}}
    token = {"secretRef": "token"}
    with EchoProvider() as provider:
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "secret.yaml").write_text(manifest)
        (repo / "script.yaml").write_text(json.dumps(script))
        (repo / "all.yaml").write_text("---\n".join([
            doc("Model", "m", {"model": "scripted", "script": "script.yaml"}),
            doc("Model", "echo", {"model": "openai/echo", "baseUrl": provider.url, "apiKey": token}),
            doc("ToolServer", "leaky", {"transport": "stdio", "timeout": "20s", "env": {"LEAK_KEY": token},
                                        "command": [sys.executable, str(HERE / "leaky_server.py")]}),
            doc("Agent", "toolman", {"model": "m", "tools": [{"toolServer": "leaky"}]}),
            doc("Agent", "talker", {"model": "echo"}),
        ]))
        af("apply", str(repo))
        af("run", "agent/toolman", "-i", "go")
        af("run", "agent/talker", "-i", "go")
        listed = json.loads(af("runs", "-o", "json").stdout)
        logs = {r["target"].rsplit("/", 1)[-1]: af("logs", r["id"], "-o", "jsonl").stdout for r in listed}
        af("get", "secrets", "-o", "yaml")
        af("describe", "secret/token", "-o", "yaml")

    # The sealed value was decrypted and used: the provider got it, the tool returned it masked.
    assert provider.keys == [VALUE]
    events = {t: [json.loads(line) for line in text.splitlines() if line.strip()] for t, text in logs.items()}
    results = {e["data"]["name"]: e["data"].get("output") for e in events["toolman"] if e["type"] == "tool.result"}
    assert results["plain"] is not None and "***" in json.dumps(results["plain"]), results
    assert "***" in json.dumps(results["environment"]), results
    deltas = "".join(e["data"]["text"] for e in events["talker"] if e["type"] == "message.delta")
    assert deltas == "Your key is ***; keep it safe.", deltas

    leaks = [(f"output of `{what}`", n) for what, text in af.outputs + laptop.outputs for n in hits(text, VALUE)]
    leaks += [(f"table {table}", n) for table, text in store_rows(store_url).items() for n in hits(text, VALUE)]
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        leaks += [(f"file {path.relative_to(home)}", n) for n in hits(text, VALUE)]
    assert not leaks, f"the sealed value leaked into {sorted({w for w, _ in leaks})}"


def test_a_value_moved_to_another_secret_or_sealed_for_another_key_is_refused(store_url, tmp_path):
    af = Af(tmp_path, tmp_path / "home", store_url)
    other = Af(tmp_path, tmp_path / "other-home")
    af("secret", "keygen")
    other("secret", "keygen")
    foreign_id, foreign_pem = json.loads(other("secret", "public-key", "-o", "json").stdout).values()
    moved = af("secret", "seal", "--name", "original", stdin=VALUE).stdout.replace("name: original", "name: moved")
    foreign = other("secret", "seal", "--name", "foreign", stdin=VALUE).stdout
    legacy = sealing.seal_v1(VALUE, sealing.load_public_key(foreign_pem.encode(), source="test"),
                             namespace="default", name="legacy")
    good = af("secret", "seal", "--name", "good", stdin=OTHER).stdout
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "secrets.yaml").write_text("---\n".join([moved, foreign, good, doc("Secret", "legacy", {"sealed": legacy})]))

    done = af("apply", str(repo), code=1)
    errors = {line.split(":")[1].strip().rsplit("/", 1)[-1]: line for line in done.stderr.splitlines()}
    assert set(errors) == {"moved", "foreign", "legacy"}, done.stderr
    assert "Ready=False DecryptFailed" in errors["moved"] and "sealed for another Secret" in errors["moved"]
    assert "seal --namespace default --name moved" in errors["moved"]
    assert "Ready=False KeyNotFound" in errors["foreign"] and f"sealed for key {foreign_id}" in errors["foreign"]
    assert "Ready=False DecryptFailed" in errors["legacy"] and "sealed for another key" in errors["legacy"]
    described = af("describe", "secret/good", "-o", "json").stdout
    assert '"Ready"' in described and "SourceFound" in described

    # A process with no key in its home (and its own store), reading the other engine's key file
    # (the deployment form): the values sealed for that key decrypt, those sealed for this one do not.
    worker = Af(tmp_path, tmp_path / "worker-home", AGENTFORM_KEY_FILE=str(sealing.private_key_path(other.home)))
    done = worker("apply", str(repo), code=1)
    assert "foreign:" not in done.stderr and "legacy:" not in done.stderr, done.stderr
    assert "moved: Ready=False KeyNotFound" in done.stderr and "good: Ready=False KeyNotFound" in done.stderr
    assert f"its keys: {foreign_id}" in done.stderr

    for what, text in af.outputs + other.outputs + worker.outputs:
        assert not hits(text, VALUE) and not hits(text, OTHER), what


def test_rotate_keeps_the_applied_revision_decrypting_and_reseals_the_folder_in_place(store_url, tmp_path):
    home = tmp_path / "home"
    af = Af(tmp_path, home, store_url)
    af("secret", "keygen")
    old_id, old_pem = json.loads(af("secret", "public-key", "-o", "json").stdout).values()
    new_style = sealed_of(af("secret", "seal", "--name", "one", stdin=VALUE).stdout)
    old_style = sealing.seal_v1(OTHER, sealing.load_public_key(old_pem.encode(), source="test"),
                                namespace="team-a", name="two")
    repo = tmp_path / "repo"
    repo.mkdir()
    secrets_file = repo / "secrets.yaml"
    secrets_file.write_text(
        "# Sealed for the engine: safe to commit.\n"
        "apiVersion: agentform.dev/v1alpha1\n"
        "kind: Secret\n"
        "metadata:\n"
        "  name: one   # the first\n"
        "spec:\n"
        f"    sealed: {new_style}   # plain, indented by four\n"
        "---\n"
        "apiVersion: agentform.dev/v1alpha1\n"
        "kind: Secret\n"
        "metadata: {name: two, namespace: team-a}\n"
        f"spec: {{\"sealed\": \"{old_style}\"}}  # flow style, double-quoted, afs1\n"
    )
    original = secrets_file.read_text()

    with EchoProvider() as provider:
        (repo / "models.yaml").write_text("---\n".join([
            doc("Model", "m1", {"model": "openai/echo", "baseUrl": provider.url, "apiKey": {"secretRef": "one"}}),
            doc("Model", "m2", {"model": "openai/echo", "baseUrl": provider.url,
                                "apiKey": {"secretRef": {"name": "two", "namespace": "team-a"}}}),
            doc("Agent", "talk1", {"model": "m1"}),
            doc("Agent", "talk2", {"model": "m2"}),
        ]))
        af("apply", str(repo))
        rotated = af("secret", "rotate", str(repo))
        assert "re-sealed default/one" in rotated.stdout and "re-sealed team-a/two" in rotated.stdout
        new_id = json.loads(af("secret", "public-key", "-o", "json").stdout)["keyId"]
        assert new_id != old_id and f"key {old_id} is kept" in rotated.stdout
        retired = sealing.key_dir(home) / f"{old_id}.key"
        assert retired.stat().st_mode & 0o777 == 0o600

        # Only the two sealed values changed, each in its own spelling; comments and layout kept.
        after = secrets_file.read_text()
        changed = [(a, b) for a, b in zip(original.splitlines(), after.splitlines(), strict=True) if a != b]
        assert len(changed) == 2, changed
        for (before, now), old in zip(changed, (new_style, old_style), strict=True):
            resealed = re.search(rf"afs2:{new_id}:[A-Za-z0-9_-]+", now).group(0)
            assert before.replace(old, resealed) == now
        assert after.endswith("\n") and original.count("\n") == after.count("\n")

        # The applied revision still holds the old values: they decrypt with the kept pair.
        af("run", "agent/talk1", "-i", "go")
        af("run", "agent/talk2", "-i", "go")
        assert provider.keys == [VALUE, OTHER]
        applied = af("apply", str(repo))
        assert "secret.agentform.dev/default/one configured" in applied.stdout
        af("run", "agent/talk2", "-i", "go")
        assert provider.keys == [VALUE, OTHER, OTHER]
    assert sealed_of(af("secret", "seal", "--name", "three", stdin=VALUE).stdout).startswith(f"afs2:{new_id}:")

    # Without the kept pair the old values would not open: the retired key is what made them work.
    retired.rename(retired.with_suffix(".gone"))
    old_repo = tmp_path / "old"
    old_repo.mkdir()
    (old_repo / "secrets.yaml").write_text(original)
    refused = af("apply", str(old_repo), "--app", "repo", code=1).stderr
    assert "default/one: Ready=False KeyNotFound" in refused and f"sealed for key {old_id}" in refused
    assert "team-a/two: Ready=False DecryptFailed" in refused
    for what, text in af.outputs:
        assert not hits(text, VALUE) and not hits(text, OTHER), what


def test_seal_refuses_what_it_cannot_seal_and_its_advice_works(tmp_path):
    af = Af(tmp_path, tmp_path / "home")
    missing = af("secret", "seal", "--name", "x", stdin=VALUE, code=1)
    advice = re.search(r"'(agentform --home \S+ secret keygen)'", missing.stderr)
    assert advice, missing.stderr
    af(*advice.group(1).split()[3:])   # the command the error names, as it names it
    assert af("secret", "seal", "--name", "x", stdin=VALUE).stdout.count("sealed: \"afs2:") == 1

    short = af("secret", "seal", "--name", "x", stdin="short77\n", code=1)
    assert "ValueTooShort" in short.stderr and "short77" not in short.stdout + short.stderr
    assert "no value on stdin" in af("secret", "seal", "--name", "x", stdin="", code=1).stderr
    assert "DNS-1123" in af("secret", "seal", "--name", "Bad_Name", stdin=VALUE, code=1).stderr
    (tmp_path / "not-a-key.pem").write_text("hello\n")
    bad_key = af("secret", "seal", "--name", "x", "--public-key", str(tmp_path / "not-a-key.pem"),
                 stdin=VALUE, code=1)
    assert "not a PEM public key" in bad_key.stderr

    # The key as PEM text in AGENTFORM_KEY (a deployment's secret store): it is the current key,
    # and keygen/rotate, which only write the home, refuse rather than make a key nobody uses.
    env_home = Af(tmp_path, tmp_path / "env-home", AGENTFORM_KEY=sealing.private_key_path(af.home).read_text())
    assert json.loads(env_home("secret", "public-key", "-o", "json").stdout) == \
        json.loads(af("secret", "public-key", "-o", "json").stdout)
    assert "AGENTFORM_KEY" in env_home("secret", "keygen", code=1).stderr
    assert not (tmp_path / "env-home").exists()
    for what, text in af.outputs:
        assert not hits(text, VALUE), what


def test_rotate_reseals_a_value_its_file_spells_over_two_lines(tmp_path):
    home = tmp_path / "home"
    af = Af(tmp_path, home)
    af("secret", "keygen")
    sealed = sealed_of(af("secret", "seal", "--name", "folded", stdin=VALUE).stdout)
    repo = tmp_path / "repo"
    repo.mkdir()
    # A double-quoted scalar continued with '\': the file never holds the value in one piece.
    (repo / "secret.yaml").write_text(
        "# sealed for the engine\napiVersion: agentform.dev/v1alpha1\nkind: Secret\n"
        f"metadata:\n  name: folded   # kept\nspec:\n  sealed: \"{sealed[:40]}\\\n    {sealed[40:]}\"\n"
        "---\n# the second document\napiVersion: agentform.dev/v1alpha1\nkind: Secret\n"
        "metadata: {name: other}\nspec: {fromEnv: AF_UNUSED}\n")
    af("secret", "rotate", str(repo))
    after = (repo / "secret.yaml").read_text()
    new_id = json.loads(af("secret", "public-key", "-o", "json").stdout)["keyId"]
    resealed = re.search(r'sealed: "(afs2:[^"]+)"', after).group(1)
    assert resealed.startswith(f"afs2:{new_id}:")
    assert sealing.unseal(resealed, home=home, namespace="default", name="folded") == VALUE
    for line in ("# sealed for the engine", "  name: folded   # kept", "# the second document",
                 "metadata: {name: other}", "spec: {fromEnv: AF_UNUSED}"):
        assert line in after.splitlines(), after
