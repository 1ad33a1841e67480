"""The redactor's parts: encodings, data walks, the delta hold-back, short values at apply and at use."""

from __future__ import annotations

import base64
import json
import secrets
from urllib.parse import quote

import pytest

from agentform.engine.errors import RunError
from agentform.engine.redaction import MASK, DeltaHold, Redactor
from agentform.specs import ResourceKey

KEY = f"sk-unit-{secrets.token_hex(10)}"


def test_every_encoding_and_alignment_is_redacted():
    redactor = Redactor()
    redactor.add(KEY + '"\\/ +')
    value = KEY + '"\\/ +'
    texts = [value, json.dumps({"k": value}), quote(value, safe=""), quote(value, safe="").replace("%20", "+")]
    texts += [base64.b64encode(b"p" * n + value.encode()).decode() for n in range(3)]
    texts += [base64.urlsafe_b64encode(b"p" * n + value.encode()).decode() for n in range(3)]
    for text in texts:
        out = redactor.text(text)
        assert MASK in out and KEY not in out, text
        # nothing of the key's own bits survives: what is left is the prefix's and padding's
        assert len(out) <= len(text) - 8, (text, out)


def test_data_is_copied_only_where_it_changes():
    redactor = Redactor()
    clean = {"a": ["x", {"b": 1}], "c": ("y",)}
    assert redactor.data(clean) is clean   # nothing registered
    redactor.add(KEY)
    assert redactor.data(clean) is clean   # nothing to redact
    dirty = {"a": ["x", {KEY: f"v {KEY}"}], "c": (KEY,), "n": 3}
    out = redactor.data(dirty)
    assert out == {"a": ["x", {MASK: f"v {MASK}"}], "c": (MASK,), "n": 3}
    assert out["a"][0] is dirty["a"][0] and dirty["c"] == (KEY,)   # the original is untouched


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_a_secret_split_across_deltas_never_shows(size):
    redactor = Redactor()
    redactor.add(KEY)
    text = f"before {KEY} between {KEY}{KEY} after"
    hold = DeltaHold(redactor)
    released = [hold.feed(text[i:i + size]) for i in range(0, len(text), size)]
    released.append(hold.flush())
    joined = "".join(released)
    assert joined == f"before {MASK} between {MASK}{MASK} after"
    assert any(released[:-1]), "nothing was released before the end"
    # without the hold-back, some chunk boundary would have cut the key
    assert all(KEY[:8] not in chunk for chunk in released)


def test_nothing_registered_releases_every_chunk_untouched():
    hold = DeltaHold(Redactor())
    assert [hold.feed("ab"), hold.feed("c"), hold.flush()] == ["ab", "c", ""]


def test_a_short_secret_is_not_ready_at_apply_and_refused_at_use(store, tmp_path, monkeypatch):
    from agentform.engine.reconcile import apply_path
    from agentform.engine.runtime import runner

    monkeypatch.setenv("SHORT_KEY", "abc1234")   # 7 characters
    head = "apiVersion: agentform.dev/v1alpha1\n"
    root = tmp_path / "m"
    root.mkdir()
    (root / "script.yaml").write_text(json.dumps({"agents": {"solo": [{"content": "hi"}]}}))
    (root / "all.yaml").write_text(
        f"{head}kind: Secret\nmetadata: {{name: short}}\nspec: {{fromEnv: SHORT_KEY}}\n---\n"
        f"{head}kind: Model\nmetadata: {{name: m}}\nspec: {{model: scripted, script: script.yaml}}\n---\n"
        f"{head}kind: ToolServer\nmetadata: {{name: t}}\nspec: {{transport: http, url: 'http://127.0.0.1:9/mcp',"
        " headers: {X-Key: {secretRef: short}}}\n---\n"
        f"{head}kind: Agent\nmetadata: {{name: solo}}\nspec: {{model: m, tools: [{{toolServer: t}}]}}\n")
    apply_path(store, root, home=tmp_path)
    secret = store.get_resource(ResourceKey("Secret", "default", "short"))
    ready = next(c for c in secret.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ValueTooShort")
    assert "default/short" in ready.message and "abc1234" not in ready.message
    assert "abc1234" not in json.dumps(secret.spec)
    result = runner.start_run(store, "agent/solo", input="go", home=tmp_path)
    assert result.status == "failed"
    assert "secret default/short" in result.error and "ValueTooShort" in result.error, result.error
    assert "abc1234" not in result.error


def test_resolve_refuses_a_short_value_naming_the_secret(tmp_path, monkeypatch):
    from agentform.engine import secrets as engine_secrets

    monkeypatch.setenv("TINY", "tiny")
    with pytest.raises(RunError, match=r"secret default/tiny: .*at least 8.*ValueTooShort"):
        engine_secrets.resolve(engine_secrets.SecretSource("default", "tiny", from_env="TINY"), home=tmp_path)


def test_cli_output_and_debug_tracebacks_pass_the_redactor(tmp_path):
    """Whatever a CLI process prints after a secret is known (here: an error naming it, with
    --debug's traceback) passes the redacting layer over stdout and stderr."""
    import subprocess
    import sys

    code = ("import sys; from agentform.engine.redaction import register; register(sys.argv.pop(1)); "
            "from agentform.api.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, KEY, "--home", str(tmp_path), "--debug",
                           "describe", f"agent/{KEY}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and f'agent "{MASK}" not found' in done.stderr, done.stderr
    assert KEY not in done.stdout + done.stderr


def test_a_detached_runs_log_passes_the_redactor(tmp_path):
    """The background process of `run --detach` writes its stdout and stderr to a log under the
    home: what it prints, a traceback included, is redacted before it reaches the file."""
    import subprocess
    import sys

    secret = "sk-detached-" + "0123456789abcdef" * 2
    child = (
        "import sys\n"
        "from agentform.engine.redaction import register\n"
        "from agentform.engine.workers import detached\n"
        f"register({secret!r})\n"
        "try:\n"
        "    detached.main(['--home', sys.argv[1], '--store', 'sqlite:///' + sys.argv[1] + '/s.db', 'nope'])\n"
        "finally:\n"
        f"    print('the key is ' + {secret!r})\n"
    )
    log = tmp_path / "detached.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-c", child, str(tmp_path)], stdout=out, stderr=out, timeout=120)
    text = log.read_text()
    assert done.returncode != 0, text          # no run 'nope': the process fails with a traceback
    assert "the key is ***" in text, text
    assert secret not in text
