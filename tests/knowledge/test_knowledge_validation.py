"""Bad KnowledgeBase manifests are located errors (file:line:col), never tracebacks: bad fields
at validate; sources that lead outside the applied folder (also through a symlink inside it)
or match no document at plan, before anything is indexed.
"""

from __future__ import annotations

import os

import pytest

from agentform.engine.api import Engine
from agentform.engine.errors import ManifestError

HEAD = """\
apiVersion: agentform.dev/v1alpha1
kind: KnowledgeBase
metadata: {name: handbook}
spec:
  sources:
    - path: docs/*.md
"""


@pytest.mark.parametrize(("tail", "line", "col", "words"), [
    ("  chunk:\n    size: 20\n", 8, 11, "spec.chunk.size: must be at least 50 (got 20)"),
    ("  chunk:\n    size: 400\n    overlap: 400\n", 8, 5, "chunk overlap must be smaller than chunk size"),
    ("  embedding:\n    model: local/bert\n", 8, 5, "unknown local embedding model 'local/bert'"),
    ("  embedding:\n    model: local/minilm\n    baseUrl: http://127.0.0.1:9\n", 8, 5,
     "'baseUrl' and 'apiKey' are for litellm models"),
    ('  store:\n    qdrant: {url: "http://127.0.0.1:6333", token: x}\n', 8, 44, "unknown field 'token'"),
])
def test_bad_fields_are_located(tmp_path, tail, line, col, words):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "kb.yaml").write_text(HEAD + tail)
    report = Engine.validate(root)
    assert not report.ok
    [error] = report.errors
    assert error.file.endswith("kb.yaml") and (error.line, error.col) == (line, col), str(error)
    assert words in error.message, str(error)


def _plan_error(tmp_path, source: str) -> str:
    root = tmp_path / "repo"
    (root / "kb.yaml").write_text(HEAD.replace("docs/*.md", source))
    engine = Engine(home=tmp_path / "home")
    with pytest.raises(ManifestError) as caught:
        engine.plan(root)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.file.endswith("kb.yaml") and (diagnostic.line, diagnostic.col) == (6, 13), str(diagnostic)
    return diagnostic.message


def test_a_symlink_out_of_the_folder_is_refused_at_plan(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("the engine's private notes\n")
    docs = tmp_path / "repo" / "docs"
    docs.mkdir(parents=True)
    (docs / "ok.md").write_text("# fine\n")
    os.symlink(outside / "secret.md", docs / "leak.md")
    message = _plan_error(tmp_path, "docs/*.md")
    assert "docs/leak.md" in message and "outside the applied folder" in message


def test_a_source_that_matches_nothing_is_refused_at_plan(tmp_path):
    (tmp_path / "repo" / "docs").mkdir(parents=True)
    (tmp_path / "repo" / "docs" / "image.png").write_bytes(b"\x89PNG")
    message = _plan_error(tmp_path, "docs/*")
    assert "matches no document" in message and ".md" in message


def test_a_path_outside_is_a_validate_error(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "kb.yaml").write_text(HEAD.replace("docs/*.md", "../**/*.md"))
    [error] = Engine.validate(root).errors
    assert (error.line, error.col) == (6, 13) and "outside the applied folder" in error.message
