"""`plan` reads nothing outside the applied folder and resolves no secret (issue 9, item 4).

A read is detected without strace: with relatime (how / is mounted here) reading a file whose
access time is older than its modification time moves the access time, while stat() and
access() do not. Each test proves its detector works by reading the file itself at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

from .helpers import MODELS, write

MARKER = "pinned-from-outside-the-folder"


def arm(path: Path) -> float:
    """Make the next read of ``path`` visible in its access time; returns that time."""
    info = os.stat(path)
    os.utime(path, (info.st_mtime - 1000, info.st_mtime))
    return os.stat(path).st_atime


def was_read(path: Path, armed: float) -> bool:
    return os.stat(path).st_atime != armed


def detector_works(path: Path, armed: float) -> bool:
    path.read_bytes()
    return was_read(path, armed)


def test_plan_refuses_a_script_outside_and_pins_nothing_of_it(cli, repo, tmp_path):
    outside = write(tmp_path / "outside", {"x.yaml": f"agents:\n  lead:\n    - content: {MARKER}\n"})
    armed = arm(outside / "x.yaml")
    (repo / "models.yaml").write_text(MODELS.replace("scripts/demo.yaml", "../outside/x.yaml"))
    done = cli("plan", "--out", "plan.json")
    assert done.code == 1
    assert "models.yaml:6:11: spec.script '../outside/x.yaml' leads outside the applied folder" in done.err
    assert not (repo / "plan.json").exists()
    assert MARKER not in done.out + done.err
    assert not was_read(outside / "x.yaml", armed)
    assert detector_works(outside / "x.yaml", armed)


def test_plan_does_not_read_a_secret_file(cli, repo, tmp_path):
    # fromFile names a file on the engine's machine (outside the folder by design): apply
    # checks it; plan only looks whether it is there.
    token = write(tmp_path / "machine", {"token": "a-long-enough-secret-value\n"}) / "token"
    write(repo, {"secret.yaml": "apiVersion: agentform.dev/v1alpha1\nkind: Secret\n"
                                f"metadata: {{name: token}}\nspec: {{fromFile: {token}}}\n"})
    assert cli("apply").code == 0
    armed = arm(token)
    done = cli("plan")
    assert done.code == 0, done.out + done.err
    assert not was_read(token, armed)
    # It is still observed: the file going away is drift.
    token.rename(token.with_name("gone"))
    gone = cli("plan")
    assert gone.code == 2 and "~ secret.agentform.dev/default/token drifted" in gone.out
    token.with_name("gone").rename(token)
    assert detector_works(token, armed)


def test_plan_does_not_decrypt_a_sealed_secret(cli, repo):
    from agentform.engine.secrets import generate_keys, private_key_path, seal

    public = generate_keys(cli.home)
    sealed = seal("a-long-enough-secret-value", public.read_bytes(), namespace="default", name="token")
    write(repo, {"secret.yaml": "apiVersion: agentform.dev/v1alpha1\nkind: Secret\n"
                                f"metadata: {{name: token}}\nspec: {{sealed: '{sealed}'}}\n"})
    assert cli("apply").code == 0
    key = private_key_path(cli.home)
    armed = arm(key)
    done = cli("plan")
    assert done.code == 0, done.out + done.err
    assert not was_read(key, armed)
    assert detector_works(key, armed)
