"""Every example validates clean, applies, and runs end to end offline on the scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from .helpers import EXAMPLE_NAMES, EXAMPLES, agentform

# example -> (run target, input, the final answer contains)
RUNS = {
    "hello": ("agent/greeter", "hello", "Hello! Nice to meet you"),
    "research-team": ("team/research", "Should we start a heat-pump business?", "Synthesis:"),
    "support-desk": ("team/support", "I was charged twice for INV-1042", "refunded the duplicate"),
    "company": ("team/company/company", "Should we open repair cafes?", "Decision: open 20"),
    "ci-overlay": ("team/release-notes", "Write the notes for 1.4", "overlays swap models per environment"),
    "triage-desk": ("team/triage-desk/desk", "I was charged twice for INV-1042", "duplicate 12.40 EUR is refunded"),
    "judge-loop": ("pipeline/judge-loop", "a solar camping lamp", "Eight hours of light"),
    "crew": ("pipeline/crew", "e-bike repair in Lyon", "open a station workshop"),
    "prompts-vars": ("team/editorial", "A beginner's guide to soldering irons", "Signed off:"),
    "knowledge-team": ("team/docs-desk", "How do I continue a run whose process died?", "agentform resume RUN"),
    "workspace-team": ("team/workshop", "Count the words of our notes", "tools/wordcount.py"),
}


def test_the_examples_are_all_here():
    assert EXAMPLE_NAMES == sorted([*RUNS, "content-pipeline"])
    for name in EXAMPLE_NAMES:
        readme = (EXAMPLES / name / "README.md").read_text()
        assert f"agentform apply examples/{name}" in readme
        assert list((EXAMPLES / name / "scripts").glob("*.yaml"))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_validates_clean(name: str):
    from agentform.engine.validation import validate_path

    result = validate_path(EXAMPLES / name)
    assert [str(d) for d in result.diagnostics] == []
    assert result.manifests and not result.failed_files
    # an overlay (ci-overlay) loads only its resources: its own scripts are not walked
    overlay = (EXAMPLES / name / "agentform.yaml").exists()
    assert [Path(s).parent.name for s in result.skipped] == ([] if overlay else ["scripts"])


def test_all_examples_validate_together():
    # Names are unique across the examples (company lives in its own namespace).
    done = agentform("validate", "examples")
    assert done.returncode == 0, done.stdout + done.stderr


def _run_record(home: Path):
    """The newest run in ``home`` and its events."""
    from agentform.engine.store import open_store

    store = open_store(None, home=home)
    try:
        run = store.list_runs(limit=1)[0]
        return run, store.read_events(run.id)
    finally:
        store.close()


def _expected_usage(name: str) -> tuple[int, int, float]:
    """Tokens in, tokens out and USD of playing every turn of the example's script once."""
    yaml = YAML(typ="safe")
    (script_file,) = (EXAMPLES / name / "scripts").glob("*.yaml")
    turns = [t for ts in yaml.load(script_file.read_text())["agents"].values() for t in ts]
    tokens_in = sum(t.get("usage", {}).get("input", 0) for t in turns)
    tokens_out = sum(t.get("usage", {}).get("output", 0) for t in turns)
    models = [
        d for pattern in ("*.yaml", "base/*.yaml") for f in (EXAMPLES / name).glob(pattern)
        for d in yaml.load_all(f.read_text()) if d.get("kind") == "Model"
    ]
    price = models[0]["spec"]["pricing"]
    usd = (tokens_in * price["inputPerMTok"] + tokens_out * price["outputPerMTok"]) / 1e6
    return tokens_in, tokens_out, usd


def _overlapping(events, paths: list[str]) -> bool:
    """All of ``paths`` started before any of them completed (they ran at the same time)."""
    started = [e.seq for e in events if e.type == "agent.started" and e.path in paths]
    completed = [e.seq for e in events if e.type == "agent.completed" and e.path in paths]
    return len(started) == len(paths) == len(completed) and max(started) < min(completed)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_end_to_end(name: str, tmp_path: Path):
    target, text, answer = RUNS[name]
    home = tmp_path / "state"
    done = agentform("apply", f"examples/{name}", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    done = agentform("run", target, "-i", text, "--ci", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert answer in done.stdout
    run, events = _run_record(home)
    assert run.status == "succeeded" and answer in str(run.output)
    tokens_in, tokens_out, usd = _expected_usage(name)
    assert (run.tokens_in, run.tokens_out) == (tokens_in, tokens_out)
    assert run.cost_usd == pytest.approx(usd)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    if name == "research-team":
        members = ["research/market-analyst", "research/tech-scout", "research/risk-analyst"]
        assert _overlapping(events, members)
    if name == "support-desk":
        handoffs = [e for e in events if e.type == "handoff"]
        assert handoffs and any("billing" in e.path or "billing" in str(e.data) for e in handoffs)
    if name == "company":
        research = ["market-sizer", "competitor-analyst", "trend-scout", "customer-researcher"]
        ops = ["capacity-planner", "cost-analyst", "vendor-manager", "compliance-officer"]
        assert _overlapping(events, [f"company/research/{m}" for m in research])
        assert _overlapping(events, [f"company/ops/{m}" for m in ops])
        assert any(e.type == "handoff" for e in events)
    if name == "ci-overlay":    # the overlay's patches swapped every Model to the scripted one
        assert {e.data["model"] for e in events if e.type == "message.completed"} == {"scripted"}
        assert [e.data["name"] for e in events if e.type == "tool.call" and e.path == "release-notes"] == [
            "todo_write", "memory_get", "ask_notes_writer", "memory_set"]
    if name == "triage-desk":   # sideways handoffs and a cycle back to triage
        handoffs = [(e.path, e.data["from"], e.data["to"]) for e in events if e.type == "handoff"]
        assert handoffs == [("desk", "triage", "billing"), ("desk/billing", "billing", "refunds"),
                            ("desk/refunds", "refunds", "triage")]
        assert [e.path for e in events if e.type == "agent.started"] == [
            "desk", "desk/billing", "desk/refunds", "desk/triage#2"]
    if name == "judge-loop":    # the generator reads the judge's feedback on every revisit
        tasks = {e.path: e.data["task"] for e in events if e.type == "agent.started"}
        assert "Vague: say what the customer gets." in tasks["judge-loop/generate#2/tagline-writer"]
        assert "Light that charges itself." in tasks["judge-loop/generate#2/tagline-writer"]
        assert "still no concrete benefit" in tasks["judge-loop/generate#3/tagline-writer"]
        assert "Attempt" not in tasks["judge-loop/generate/tagline-writer"]
        last = [e for e in events if e.type == "stage.completed" and e.path == "judge-loop/judge#3"]
        assert last and last[0].data.get("exhausted") is True and "goto" not in last[0].data
    if name == "crew":          # one agent, two stages, each with its own JSON schema
        outputs = {e.path: e.data["output"] for e in events if e.type == "stage.completed"}
        assert outputs["crew/research"]["findings"][0].startswith("Home e-bike repair")
        assert [s["owner"] for s in outputs["crew/plan"]["steps"]] == ["ops", "hr"]
        assert sum(e.type == "message.completed" and e.path == "crew/plan/crew-analyst" for e in events) == 2
    if name == "knowledge-team":   # the search cites lines of the docs that hold the answer
        [found] = [e.data["output"]["results"] for e in events if e.type == "tool.result"
                   and e.data.get("name") == "search_knowledge"]
        cited = ["\n".join((EXAMPLES / name / hit["path"]).read_text().split("\n")[hit["startLine"] - 1:hit["endLine"]])
                 for hit in found]
        assert found[0]["path"] == "docs/README.md" and any("agentform resume RUN" in text for text in cited)
    if name == "workspace-team":   # the next run finds (and runs) the script the first one wrote
        first = [e.data for e in events if e.type == "tool.result" and e.path == "workshop"][0]
        assert first["output"]["stdout"] == "no tools yet\n"
        assert any(e.type == "workspace.changed" and "tools/wordcount.py" in e.data["paths"] for e in events)
        again = agentform("run", target, "-i", "again", "--ci", home=home)
        assert again.returncode == 0, again.stdout + again.stderr
        _, events = _run_record(home)
        found = [e.data for e in events if e.type == "tool.result" and e.path == "workshop"]
        assert found[0]["output"]["stdout"] == "wordcount.py\nnotes.md: 33 words\n"
        assert found[-1]["output"] == "notes.md: 33 words\nnotes.md: 33 words\n"   # counts.log, one line a run
    if name == "prompts-vars":
        assert {"editorial/copywriter", "editorial/fact-desk"} <= {e.path for e in events if e.type == "agent.started"}


def test_content_pipeline_waits_for_approval_then_finishes(tmp_path: Path):
    home = tmp_path / "state"
    assert agentform("apply", "examples/content-pipeline", home=home).returncode == 0
    done = agentform("run", "pipeline/content", "-p", "topic=heat pumps", "--ci", home=home)
    assert done.returncode == 3, done.stdout + done.stderr
    run, events = _run_record(home)
    assert run.status == "waiting"
    assert any(e.type == "approval.requested" for e in events)
    paths = {e.path for e in events}
    assert "content/review#2" in paths                     # the loop went round once
    assert sum(p.startswith("content/summarize[") and p.endswith("/summarizer") for p in paths) == 3
    # forEach runs two items at a time (maxParallel: 2): the first two overlap.
    assert _overlapping(events, [f"content/summarize[{i}]/summarizer" for i in (0, 1)])

    done = agentform("approve", run.id, "-m", "ship it", home=home)   # another process
    assert done.returncode == 0, done.stdout + done.stderr
    run, events = _run_record(home)
    assert run.status == "succeeded"
    assert "The bottleneck is people" in str(run.output).replace("\n", " ")
    resolved = [e for e in events if e.type == "approval.resolved"]
    assert len(resolved) == 1 and resolved[0].data.get("message") == "ship it"
    tokens_in, tokens_out, usd = _expected_usage("content-pipeline")
    assert (run.tokens_in, run.tokens_out) == (tokens_in, tokens_out)
    assert run.cost_usd == pytest.approx(usd)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_readme_commands_work(name: str, tmp_path: Path):
    """Every command in the example's README runs as written (``<RUN>``: the run just made)."""
    import re
    import shlex

    readme = (EXAMPLES / name / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    home, run_id = tmp_path / "state", None
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "agentform", line
        args = [run_id if w == "<RUN>" else w for w in words[1:]]
        if args[0] == "run":
            args.append("--ci")
        done = agentform(*args, home=home)
        expected = 3 if args[:2] == ["run", "pipeline/content"] else 0
        assert done.returncode == expected, f"{line}\n{done.stdout}{done.stderr}"
        if args[0] == "run":
            run_id = _run_record(home)[0].id
