"""Fast start: `--help`, `validate`, `schema` and `init` import none of the heavy dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import EXAMPLES, ROOT, cli_env

# opentelemetry: only a run with OTEL_EXPORTER_OTLP_ENDPOINT set imports it (engine/tracing/).
HEAVY = ("litellm", "mcp", "qdrant_client", "docker", "fastapi", "opentelemetry")

# Runs the CLI in-process (as the console script does) and reports, at exit, which heavy
# top-level modules ended up in sys.modules.
PROBE = """
import json, sys
from agentform.api.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
finally:
    heavy = sorted({name.split('.')[0] for name in sys.modules} & set(%r))
    print("\\n@@" + json.dumps({"exit": code, "heavy": heavy}), file=sys.__stderr__)
"""


def _probe(*args: str, cwd: Path = ROOT) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *args], cwd=cwd, env=cli_env(cwd / ".af"),
        capture_output=True, text=True, timeout=60,
    )
    report = done.stderr.rsplit("@@", 1)
    assert len(report) == 2, f"the probe did not finish: {done.stderr[-2000:]}"
    return {**json.loads(report[1]), "out": done.stdout, "err": report[0]}


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", str(EXAMPLES / "hello")],
        ["validate", str(EXAMPLES)],
        ["schema", "agent"],
    ],
    ids=["help", "validate-hello", "validate-examples", "schema"],
)
def test_light_commands_import_nothing_heavy(args):
    result = _probe(*args)
    assert result["exit"] in (0, None), result["err"]
    assert result["heavy"] == [], f"`agentform {' '.join(args)}` imported {result['heavy']}"


def test_init_imports_nothing_heavy(tmp_path: Path):
    result = _probe("init", str(tmp_path / "repo"), cwd=tmp_path)
    assert result["exit"] in (0, None), result["err"]
    assert result["heavy"] == []


def test_plan_apply_and_a_scripted_run_import_only_what_is_in_play(tmp_path: Path):
    # The examples use the scripted model and no tools: no litellm, no mcp, nothing heavy.
    home = tmp_path / "state"
    steps = [
        ["--home", str(home), "plan", str(EXAMPLES / "research-team")],
        ["--home", str(home), "apply", str(EXAMPLES / "research-team")],
        ["--home", str(home), "run", "team/research", "-i", "go", "--ci"],
        # the read side goes through Engine's queries: no heavy import either
        ["--home", str(home), "get", "agents"],
        ["--home", str(home), "describe", "team/research"],
        ["--home", str(home), "runs", "-o", "json"],
        ["--home", str(home), "get", "runs", "-A"],
        ["--home", str(home), "get", "threads"],
    ]
    for args in steps:
        result = _probe(*args)
        assert result["exit"] in (0, 2, None), result["err"]
        assert result["heavy"] == [], f"`agentform {' '.join(args[2:])}` imported {result['heavy']}"


def test_the_probe_sees_a_heavy_import():
    # The probe itself must be able to fail: importing docker is reported.
    code = PROBE.replace("from agentform.api.cli import main", "import docker; from agentform.api.cli import main")
    done = subprocess.run(
        [sys.executable, "-c", code % (HEAVY,), "--help"], cwd=ROOT, env=cli_env(),
        capture_output=True, text=True, timeout=60,
    )
    assert json.loads(done.stderr.rsplit("@@", 1)[1])["heavy"] == ["docker"]
