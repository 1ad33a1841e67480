"""Text echoed by an error is printed with control and bidi characters escaped (``\\u202e``),
never raw: a U+202E, a BEL or an ESC sequence in a manifest, a typed argument or a model's
error must not reorder, recolour or ring the terminal that shows the error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from validate_helpers import AGENTFORM, HEADER, write_tree

from agentform.engine.errors import Diagnostic, printable

RAW = ("\u202e", "\x07", "\x1b", "\u2066", "\r")
# In YAML double quotes: \u202e (right-to-left override), \a (BEL), \e[31m (ESC, red), \u2066 (LRI)
EVIL = r"evil\u202e\ared\e[31m\u2066"
SHOWN = r"evil\u202e\x07red\x1b[31m\u2066"

TREE = {
    "a.yaml": HEADER + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n---\n"
    + HEADER + f'kind: Agent\nmetadata: {{name: "{EVIL}"}}\nspec: {{model: fast}}\n---\n'
    + HEADER + f'kind: Agent\nmetadata: {{name: helper}}\nspec: {{model: fast, budget: {{timeout: "{EVIL}"}}}}\n',
}


def af(cwd: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTFORM_STORE", "AGENTFORM_HOME")}
    env["AGENTFORM_HOME"] = str(home)
    return subprocess.run(AGENTFORM + list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=env)


def assert_escaped(proc: subprocess.CompletedProcess, where: str = "stdout") -> str:
    for stream in (proc.stdout, proc.stderr):
        for char in RAW:
            assert char not in stream, (char, stream)
    text = getattr(proc, where)
    assert SHOWN in text, text
    return text


def test_validate_text_github_and_json_show_control_characters_escaped(tmp_path):
    write_tree(tmp_path, TREE)
    text = assert_escaped(af(tmp_path, "validate", home=tmp_path / "h"))
    assert f"a.yaml:8:18: metadata.name: '{SHOWN}' is not a DNS-1123 label" in text
    assert f"a.yaml:14:39: spec.budget.timeout: '{SHOWN}' is not a duration" in text

    github = assert_escaped(af(tmp_path, "validate", "--format", "github", home=tmp_path / "h"))
    assert f"::error file=a.yaml,line=14,col=39::spec.budget.timeout: '{SHOWN}'" in github

    proc = af(tmp_path, "validate", "-o", "json", home=tmp_path / "h")
    for char in RAW:
        assert char not in proc.stdout
    # JSON keeps the exact text, as JSON escapes: a program reading it gets the real characters.
    messages = [d["message"] for d in json.loads(proc.stdout)["diagnostics"]]
    assert any("evil\u202e\x07red\x1b[31m\u2066" in m for m in messages), messages


def test_plan_and_apply_print_manifest_errors_escaped(tmp_path):
    write_tree(tmp_path, TREE)
    for command in ("plan", "apply"):
        proc = af(tmp_path, command, ".", home=tmp_path / "h")
        assert proc.returncode == 1
        assert f"a.yaml:14:39: spec.budget.timeout: '{SHOWN}'" in assert_escaped(proc, "stderr")


def test_usage_errors_echo_what_was_typed_escaped(tmp_path):
    proc = af(tmp_path, "\u202enosuch\x07", home=tmp_path / "h")
    assert proc.returncode == 1
    for char in RAW:
        assert char not in proc.stderr
    assert "No such command '\\u202enosuch\\x07'" in proc.stderr

    proc = af(tmp_path, "get", f"agents{chr(0x202e)}", home=tmp_path / "h")
    assert proc.returncode == 1
    assert "\u202e" not in proc.stderr and "agents\\u202e" in proc.stderr, proc.stderr


def test_a_failed_run_prints_its_error_escaped(tmp_path):
    write_tree(tmp_path, {
        "m.yaml": HEADER + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml, retries: 0}\n---\n"
        + HEADER + "kind: Agent\nmetadata: {name: bot}\nspec: {model: m}\n",
        # A provider error that carries terminal control sequences (a hostile or broken endpoint).
        "s.yaml": f'agents:\n  bot:\n    - error: "{EVIL}"\n',
    })
    home = tmp_path / "h"
    assert af(tmp_path, "apply", ".", home=home).returncode == 0
    proc = af(tmp_path, "run", "agent/bot", "--ci", home=home)
    assert proc.returncode == 1
    err = assert_escaped(proc, "stderr")
    assert "error: run " in err


def test_diagnostic_lines_stay_one_line_and_printable_keeps_ordinary_text():
    d = Diagnostic("a\u202e.yaml", 3, 4, "bad value 'x\ny\u2028z'")
    assert str(d) == "a\\u202e.yaml:3:4: bad value 'x\\ny\\u2028z'"
    assert printable("caf\u00e9 \u00b7 \u2192 \u4e2d\u6587 \U0001f600 multi\nline\ttab") == \
        "caf\u00e9 \u00b7 \u2192 \u4e2d\u6587 \U0001f600 multi\nline\ttab"
    assert printable("\ud800 \U000e0041 \x9b \u200b") == "\\ud800 \\U000e0041 \\x9b \\u200b"


def test_the_live_view_shows_a_failed_agent_error_escaped(tmp_path):
    import pty

    write_tree(tmp_path, {
        "m.yaml": HEADER + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml, retries: 0}\n---\n"
        + HEADER + "kind: Agent\nmetadata: {name: bot}\nspec: {model: m}\n",
        "s.yaml": f'agents:\n  bot:\n    - error: "{EVIL}"\n',
    })
    home = tmp_path / "h"
    assert af(tmp_path, "apply", ".", home=home).returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTFORM_STORE", "CI")}
    env.update(AGENTFORM_HOME=str(home), TERM="xterm", COLUMNS="200")
    master, slave = pty.openpty()   # a terminal: the live view (rich), not the --ci lines
    proc = subprocess.Popen(AGENTFORM + ["run", "agent/bot"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 1
    shown = b"".join(chunks).decode("utf-8", "replace")
    for char in ("\u202e", "\x07", "\u2066"):
        assert char not in shown, (char, shown)
    assert "\\u202e\\x07red\\x1b[31m" in shown, shown
