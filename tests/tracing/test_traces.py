"""OpenTelemetry traces of runs, as a collector receives them (OTLP/HTTP protobuf on 127.0.0.1).

The span tree of the 3-level example (run > segment > agents > their model and tool calls,
each member inside the ask_/transfer_to_ call that started it), its GenAI attributes against
the stream's own usage, one trace across an approval and across a ``kill -9`` and ``resume``
in real processes, no message content unless asked, and never a secret.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agentform.engine import tracing
from agentform.engine.api import Engine
from agentform.engine.redaction import encoded_forms
from tests.runtime.helpers import EXAMPLES, agent, apply, manifest, of, project, team
from tests.runtime.test_cli import CLI, _env, wait_for

from .receiver import Receiver

HERE = Path(__file__).parent
RUNTIME = HERE.parent / "runtime"
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result", "agentform.run.input", "agentform.run.output",
                "agentform.stage.input", "agentform.stage.output"}
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def ulid_hex(run_id: str) -> str:
    """The 128 bits of a ULID-style run id as 32 hex digits (what the trace id must be)."""
    value = 0
    for c in run_id:
        value = value * 32 + _CROCKFORD.index(c)
    return f"{value:032x}"


@pytest.fixture
def receiver(monkeypatch):
    """A receiver, and this process's runs exporting to it (the batch sent every 50 ms)."""
    with Receiver() as rec:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rec.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.delenv(tracing.CAPTURE_VARIABLE, raising=False)
        yield rec
        tracing.flush()


def _finished(name: str):
    return lambda spans: any(s.name == name for s in spans)


def _tree_checks(spans, run_id: str) -> dict[str, object]:
    """What holds for any run's spans: one trace (the run id's), unique ids, every parent
    received, children within their parents' time; returns the spans by id."""
    assert {s.trace_id for s in spans} == {ulid_hex(run_id)}
    ids = Counter(s.span_id for s in spans)
    assert max(ids.values()) == 1, [s.name for s in spans if ids[s.span_id] > 1]
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [r.name.split(" ")[0] for r in roots] == ["run"]
    for s in spans:
        assert s.attributes["agentform.run.id"] == run_id
        assert s.end_ns >= s.start_ns
        if s.parent_id:
            parent = by_id.get(s.parent_id)
            assert parent is not None, f"{s.name}: its parent {s.parent_id} was never exported"
            assert parent.start_ns <= s.start_ns and s.end_ns <= parent.end_ns, (s.name, parent.name)
    return by_id


def _named(spans, name: str, path: str | None = None):
    found = [s for s in spans if s.name == name and (path is None or s.attributes.get("agentform.path") == path)]
    assert len(found) == 1, (name, path, [(s.name, s.attributes.get("agentform.path")) for s in spans])
    return found[0]


# -- the 3-level example ------------------------------------------------------------------------

async def test_the_span_tree_of_the_three_level_example(store, tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,authorization=Bearer%20t0ken")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "agents-prod")
    apply(store, EXAMPLES / "company", tmp_path)
    result = await Engine(tmp_path, store=store).run("team/company/company", input="Should we open repair cafes?")
    assert result.status == "succeeded", result.error
    spans = receiver.wait_for(_finished("run team/company/company"))
    events = store.read_events(result.id)
    by_id = _tree_checks(spans, result.id)
    assert spans[0].trace_id == Engine.trace_id(result.id)   # what users look the trace up by

    run = _named(spans, "run team/company/company")
    assert run.attributes["agentform.run.status"] == "completed" and run.status == 0
    assert run.attributes["gen_ai.usage.input_tokens"] == result.tokens_in
    assert run.attributes["gen_ai.usage.output_tokens"] == result.tokens_out
    assert run.attributes["agentform.cost_usd"] == pytest.approx(result.cost_usd)
    segment = _named(spans, "segment")
    assert segment.parent_id == run.span_id and segment.attributes["agentform.segment.trigger"] == "start"

    # every agent invocation, inside the tool call that asked it (or handed over to it)
    ceo = _named(spans, "invoke_agent ceo", "company")
    assert ceo.parent_id == segment.span_id and ceo.attributes["gen_ai.operation.name"] == "invoke_agent"
    for lead, tool, members in (
        ("research", "ask_research", ("market-sizer", "competitor-analyst", "trend-scout", "customer-researcher")),
        ("ops", "transfer_to_ops", ("capacity-planner", "cost-analyst", "vendor-manager", "compliance-officer")),
    ):
        call = _named(spans, f"execute_tool {tool}", "company")
        assert call.parent_id == ceo.span_id and call.attributes["gen_ai.tool.name"] == tool
        lead_span = _named(spans, f"invoke_agent {lead}-lead", f"company/{lead}")
        assert lead_span.parent_id == call.span_id
        for member in members:
            ask = _named(spans, f"execute_tool ask_{member.replace('-', '_')}", f"company/{lead}")
            assert ask.parent_id == lead_span.span_id
            specialist = _named(spans, f"invoke_agent {member}", f"company/{lead}/{member}")
            assert specialist.parent_id == ask.span_id
            assert by_id[by_id[specialist.parent_id].parent_id].parent_id == call.span_id  # three levels down
    assert len([s for s in spans if s.name.startswith("invoke_agent ")]) == len(of(events, "agent.started")) == 11

    # one chat span per model reply, inside its agent, with the usage the stream recorded
    replies = of(events, "message.completed")
    usages = of(events, "usage")
    chats = sorted((s for s in spans if s.name.startswith("chat ")), key=lambda s: s.end_ns)
    assert len(chats) == len(replies) == len(usages) == 15
    for chat, reply, usage in zip(chats, replies, usages, strict=True):
        assert chat.attributes["agentform.path"] == reply.path
        assert chat.kind == 3   # SPAN_KIND_CLIENT, as the GenAI conventions say
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == reply.data["model"] == "scripted"
        assert chat.attributes["gen_ai.usage.input_tokens"] == usage.data["tokens_in"]
        assert chat.attributes["gen_ai.usage.output_tokens"] == usage.data["tokens_out"]
        assert chat.attributes["agentform.cost_usd"] == pytest.approx(usage.data["cost_usd"])
        assert chat.end_ns == int(reply.ts * 1e9)
        parent = by_id[chat.parent_id]
        assert parent.name == f"invoke_agent {reply.data['agent']}" and parent.attributes["agentform.path"] == reply.path
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert len(tools) == len(of(events, "tool.call")) == 11
    handoff = [e for e in _named(spans, "invoke_agent ceo").events if e[0] == "handoff"]
    assert handoff and handoff[0][1]["agentform.to"] == "ops"

    # the standard variables: service name, headers; no message content by default
    assert {s.resource["service.name"] for s in spans} == {"agents-prod"}
    assert all(r.get("x-tenant") == "acme" and r.get("authorization") == "Bearer t0ken" for r in receiver.requests)
    assert not [(s.name, k) for s in spans for k in s.attributes if k in CONTENT_KEYS]
    sent = b"".join(receiver.bodies)
    for text in ("Should we open repair cafes", "Decision: open 20 repair cafes", "Size the repair-cafe market"):
        assert text.encode() not in sent


async def test_message_content_is_exported_when_asked(store, tmp_path, receiver, monkeypatch):
    monkeypatch.setenv(tracing.CAPTURE_VARIABLE, "true")
    apply(store, EXAMPLES / "company", tmp_path)
    result = await Engine(tmp_path, store=store).run("team/company/company", input="Should we open repair cafes?")
    spans = receiver.wait_for(_finished("run team/company/company"))
    _tree_checks(spans, result.id)
    ceo = _named(spans, "invoke_agent ceo")
    assert json.loads(ceo.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Should we open repair cafes?"
    assert json.loads(ceo.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == result.output
    last = max((s for s in spans if s.name.startswith("chat ") and s.attributes["agentform.path"] == "company"),
               key=lambda s: s.end_ns)
    assert json.loads(last.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": result.output}]}]
    ask = _named(spans, "execute_tool ask_market_sizer")
    assert json.loads(ask.attributes["gen_ai.tool.call.arguments"]) == {"task": "Size the repair-cafe market"}
    assert ask.attributes["gen_ai.tool.call.result"].startswith("About 400M EUR")
    assert _named(spans, "run team/company/company").attributes["agentform.run.output"] == result.output


# -- secrets ------------------------------------------------------------------------------------

SECRET = "canary-Tr4ce-sekret-value"


async def test_a_secret_never_reaches_the_collector(store, tmp_path, receiver, monkeypatch):
    """Content capture on, a tool server that hands out the secret (results, an error), a model
    reply that repeats it: what the collector receives holds none of its forms."""
    monkeypatch.setenv(tracing.CAPTURE_VARIABLE, "true")
    monkeypatch.setenv("ECHO_TOKEN_TEST", SECRET)
    calls = [{"name": "plain", "arguments": {}}, {"name": "structured", "arguments": {}},
             {"name": "fail", "arguments": {}}]
    script = {"agents": {"solo": [{"toolCalls": calls}, {"content": f"the token was {SECRET}"}]}}
    echo = manifest("ToolServer", "echo", {"transport": "stdio", "command": [sys.executable, str(RUNTIME / "mcp_echo.py")],
                                           "env": {"ECHO_SECRET": {"secretRef": "echo-token"}}})
    root = project(tmp_path / "m", script, [manifest("Secret", "echo-token", {"fromEnv": "ECHO_TOKEN_TEST"}), echo,
                                            agent("solo", tools=[{"toolServer": "echo"}])])
    apply(store, root, tmp_path)
    result = await Engine(tmp_path, store=store).run("agent/solo", input=f"use {SECRET}")
    assert result.status == "succeeded", result.error
    spans = receiver.wait_for(_finished("run agent/default/solo"))
    _tree_checks(spans, result.id)
    plain = next(s for s in spans if s.name == "execute_tool plain")
    assert plain.attributes["gen_ai.tool.call.result"] == "the token is ***"   # content there, masked
    fail = next(s for s in spans if s.name == "execute_tool fail")
    assert fail.status == 2 and "refused token ***" in fail.message
    sent = b"".join(receiver.bodies)
    assert b"***" in sent
    for form in encoded_forms(SECRET):
        assert form.encode() not in sent, form


# -- one trace across segments -----------------------------------------------------------------

async def test_an_approval_keeps_the_run_one_trace(store, tmp_path, receiver):
    """The content pipeline parks on its approval (segment 1 ends ``waiting``) and ``approve``
    continues it (segment 2): the stage waiting for the approval is a span in each, the
    second linked to the first."""
    apply(store, EXAMPLES / "content-pipeline", tmp_path)
    engine = Engine(tmp_path, store=store)
    first = await engine.run("pipeline/content", params={"topic": "heat pumps"})
    assert first.status == "waiting"
    receiver.wait_for(lambda spans: any(s.name == "segment" for s in spans))
    done = await engine.approve(first.id)
    assert done.status == "succeeded", done.error
    spans = receiver.wait_for(_finished("run pipeline/default/content"))
    by_id = _tree_checks(spans, first.id)
    run = _named(spans, "run pipeline/default/content")
    segments = sorted((s for s in spans if s.name == "segment"), key=lambda s: s.start_ns)
    assert [s.attributes["agentform.segment.outcome"] for s in segments] == ["waiting", "completed"]
    assert [s.attributes["agentform.segment.trigger"] for s in segments] == ["start", "resume"]
    assert all(s.parent_id == run.span_id and s.status == 0 for s in segments)
    before, after = sorted((s for s in spans if s.name == "stage publish"), key=lambda s: s.start_ns)
    assert before.parent_id == segments[0].span_id and after.parent_id == segments[1].span_id
    assert before.end_ns == segments[0].end_ns and after.start_ns == segments[1].start_ns
    assert before.attributes["agentform.span.continued"] is True
    assert after.attributes["agentform.span.continues"] == before.span_id
    assert any(e[0] == "approval.requested" for e in before.events)
    assert [e[1]["agentform.approved"] for e in after.events if e[0] == "approval.resolved"] == [True]
    # stages: a forEach item inside its stage, the agent inside its stage, a revisited stage apart
    items = [s for s in spans if s.name == "stage summarize" and s.attributes["agentform.path"].endswith("]")]
    summarize = _named(spans, "stage summarize", "content/summarize")
    assert len(items) == 3 and all(s.parent_id == summarize.span_id for s in items)
    writer = _named(spans, "invoke_agent writer", "content/draft#2/writer")
    assert by_id[writer.parent_id].attributes["agentform.stage.visit"] == 2
    started = of(store.read_events(first.id), "stage.started")   # publish: one span in each segment
    assert len([s for s in spans if s.name.startswith("stage ")]) == len(started) + 1


def _three_levels(tmp_path: Path) -> Path:
    """top (boss) > inner (lead) > w1, w2; w2's reply takes 4 s (the run is killed during it)."""
    script = {"agents": {
        "boss": [{"toolCalls": [{"name": "ask_inner", "arguments": {"task": "do it"}}]}, {"content": "all done"}],
        "lead": [{"toolCalls": [{"name": "ask_w1", "arguments": {"task": "one"}},
                                {"name": "ask_w2", "arguments": {"task": "two"}}]}, {"content": "both done"}],
        "w1": [{"content": "one done"}], "w2": [{"content": "two done", "latency": "4s"}]}}
    docs = [agent("boss"), agent("lead"), agent("w1"), agent("w2"),
            team("inner", "lead", [{"agent": "w1"}, {"agent": "w2"}]), team("top", "boss", [{"team": "inner"}])]
    return project(tmp_path / "m", script, docs)


def test_a_run_killed_and_resumed_is_one_trace(store, store_url, tmp_path, receiver):
    """``agentform run`` is killed (SIGKILL) while a member of the third level waits for its
    model; ``agentform resume`` finishes it in another process: one trace, two segments (the
    dead one and the spans it cut exported by the resumer), each cut span continued in the
    second segment under the continuation of its parent."""
    apply(store, _three_levels(tmp_path), tmp_path)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    proc = subprocess.Popen([*CLI, "--home", str(tmp_path), "--store", store_url, "run", "team/top", "-i", "go"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))
    try:
        run = wait_for(lambda: next(iter(store.list_runs()), None))
        wait_for(lambda: any(e.type == "agent.started" and e.path == "top/inner/w2" for e in store.read_events(run.id)))
        receiver.wait_for(_finished("invoke_agent w1"))   # what the first process finished, it sent
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    resumed = subprocess.run([*CLI, "--home", str(tmp_path), "--store", store_url, "resume", run.id],
                             capture_output=True, text=True, timeout=90, env=_env(**env))
    assert resumed.returncode == 0, resumed.stderr
    spans = receiver.wait_for(_finished("run team/default/top"))
    events = store.read_events(run.id)
    assert events[-1].type == "run.completed"
    by_id = _tree_checks(spans, run.id)

    root = _named(spans, "run team/default/top")
    segments = sorted((s for s in spans if s.name == "segment"), key=lambda s: s.start_ns)
    assert len(segments) == 2 and all(s.parent_id == root.span_id for s in segments)
    dead, alive = segments
    assert dead.status == 2 and "owner died" in dead.message
    assert alive.attributes["agentform.segment.trigger"] == "resume" and alive.status == 0
    assert len({s.resource["service.instance.id"] for s in spans}) == 2   # spans from both processes

    # open at the kill: cut at the dead segment's end (sent by the resumer), continued in the next
    for name, caller in (("boss", None), ("lead", "ask_inner"), ("w2", "ask_w2")):
        first, second = sorted((s for s in spans if s.name == f"invoke_agent {name}"), key=lambda s: s.start_ns)
        assert first.end_ns == dead.end_ns and first.attributes["agentform.span.continued"] is True
        assert second.start_ns == alive.start_ns and second.attributes["agentform.span.continues"] == first.span_id
        if caller is None:
            assert first.parent_id == dead.span_id and second.parent_id == alive.span_id
        else:   # each part inside the matching part of the call that asked for it
            assert by_id[first.parent_id].name == by_id[second.parent_id].name == f"execute_tool {caller}"
            assert by_id[second.parent_id].attributes["agentform.span.continues"] == first.parent_id
    w1 = _named(spans, "invoke_agent w1")
    assert w1.end_ns <= dead.end_ns and w1.resource["service.instance.id"] != alive.resource["service.instance.id"]
    assert dead.resource["service.instance.id"] == alive.resource["service.instance.id"]   # the resumer sent it
    # w2's reply was asked for again in the second segment: its chat span is there
    w2_chat = _named(spans, "chat scripted", "top/inner/w2")
    assert by_id[w2_chat.parent_id].attributes["agentform.span.continues"] and w2_chat.start_ns >= alive.start_ns
    assert len([s for s in spans if s.name.startswith("chat ")]) == len(of(events, "message.completed"))


# -- the switches -------------------------------------------------------------------------------

def test_the_standard_variables_switch_tracing():
    assert not tracing.enabled({})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.capture_content({}) and not tracing.capture_content({tracing.CAPTURE_VARIABLE: "false"})
    assert tracing.capture_content({tracing.CAPTURE_VARIABLE: "True"})
    on_event = print
    assert tracing.observe("01m8kmt80z41r9jfz8x6ads1ca", on_event) is on_event   # off: the callback as it was


async def test_a_run_the_sampler_drops_sends_nothing(store, tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    apply(store, EXAMPLES / "hello", tmp_path)
    result = await Engine(tmp_path, store=store).run("agent/greeter", input="hi")
    assert result.status == "succeeded"
    assert tracing.flush()   # everything finished is sent by now
    assert receiver.spans == [] and receiver.requests == []
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")   # the same process, sampled again
    second = await Engine(tmp_path, store=store).run("agent/greeter", input="hi")
    spans = receiver.wait_for(_finished("run agent/default/greeter"))
    assert {s.trace_id for s in spans} == {ulid_hex(second.id)}


async def test_a_fork_is_a_trace_of_its_own(store, tmp_path, receiver):
    """A fork's copied past is its first segment (``forked``), the live part its second; the
    fork's trace id is its own run id's, the origin named on the run span."""
    apply(store, EXAMPLES / "company", tmp_path)
    engine = Engine(tmp_path, store=store)
    origin = await engine.run("team/company/company", input="Should we open repair cafes?")
    at = next(e.seq for e in store.read_events(origin.id) if e.type == "agent.started" and e.path == "company/ops")
    fork = await engine.fork(origin.id, at)
    assert fork.status == "succeeded", fork.error
    spans = receiver.wait_for(lambda got: sum(s.name == "run team/company/company" for s in got) == 2)
    mine = [s for s in spans if s.trace_id == ulid_hex(fork.id)]
    _tree_checks(mine, fork.id)
    run = _named(mine, "run team/company/company")
    assert run.attributes["agentform.run.forked_from"] == origin.id
    past, live = sorted((s for s in mine if s.name == "segment"), key=lambda s: s.start_ns)
    assert past.attributes["agentform.segment.outcome"] == "forked" and past.status == 0
    assert live.attributes["agentform.segment.trigger"] == "resume"
    # ops-lead started in the copied past: its invocation is cut there and continued live
    first, second = sorted((s for s in mine if s.name == "invoke_agent ops-lead"), key=lambda s: s.start_ns)
    assert first.end_ns == past.end_ns and second.attributes["agentform.span.continues"] == first.span_id
