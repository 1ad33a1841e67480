"""Without chromium the browser tests fail, saying how to install it; they never skip."""

from __future__ import annotations

import os
import subprocess
import sys

from .helpers import ROOT


def test_missing_chromium_fails_with_the_fix(tmp_path):
    env = {**os.environ, "AGENTFORM_CHROMIUM": str(tmp_path / "no-chromium-here")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-rA",
         "tests/web/test_pages.py::test_pages_in_a_browser[sqlite]"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 error" in out or "1 failed" in out, out
    assert "skipped" not in out.lower(), out
    assert "chromium is missing at" in out and "apt-get install chromium" in out, out
