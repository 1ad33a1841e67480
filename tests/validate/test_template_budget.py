"""Every render has one budget (CONTRACT section 8: 1 MiB output, 10 MiB for any value built,
1 s of CPU), enforced inside the sandbox: each attack ends in a clear template error, in
bounded CPU time and memory, at validate (file:line:col) when the template does not depend
on the run, else at run time on the stage or agent that renders it.

Attacks run in a child process under a 200 MiB address-space limit, so a template that
escaped the budget would fail with MemoryError (reported as "out of memory", which the
tests refuse) instead of taking the machine down; the child reports its own CPU time.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from validate_helpers import AGENTFORM, HEADER

from agentform.engine import template_settings, templates
from agentform.engine.errors import UsageError

MEMORY = 200 << 20
CPU_SECONDS = 3.0  # the 1 s budget, plus one bounded step and the child's slack under load

CHILD = r"""
import json, resource, sys, time
from agentform.engine import template_settings, templates
source, kind = sys.argv[1], sys.argv[2]
start = time.process_time()
try:
    value = templates.render(source, {}) if kind == "render" else templates.evaluate(source, {})
    result = "rendered " + str(len(str(value))) + " characters"
except templates.TemplateError as exc:
    result = str(exc)
# VmHWM is this process image's peak RSS; ru_maxrss would carry the forking parent's peak
# across exec (a large pytest process would then fail every attack).
with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"result": result, "cpu": time.process_time() - start, "rss_kib": hwm}))
"""

VALUE = r"over budget.*over the 10 MiB limit for any value \(templates\.maxIntermediate\)"
CPU = r"over budget.*more than 1 s of CPU \(templates\.maxCpu\)"
OUTPUT = r"too large \(over 1,048,576 characters, templates\.maxOutput\)"
STEP = r"over budget.*accepts at most 1,048,576 characters \(templates\.maxOutput\)"
INTEGER = r"over budget.*integer of more than 65536 bits"
ALLOCATED = r"over budget.*more than 100 MiB of values in one render"

# name -> (render | evaluate, source, expected message)
ATTACKS: dict[str, tuple[str, str, str]] = {
    "concat_doubling_in_namespace": ("render", "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", VALUE),
    "str_format_width": ("render", "{{ '{:>2000000000}'.format('x') }}", VALUE),
    "str_format_nested_width": ("render", "{{ '{:>{w}}'.format('x', w=2000000000) }}", VALUE),
    "str_format_precision": ("render", "{{ '{:.2000000000f}'.format(1.5) }}", VALUE),
    "str_format_repeated_field": ("render", "{{ ('{0}' * 1000).format('x' * 100000) }}", VALUE),
    "format_map": ("render", "{{ '{a:>2000000000}'.format_map({'a': 'x'}) }}", VALUE),
    "markup_format": ("render", "{{ ('{:>2000000000}' | safe).format('x') }}", VALUE),
    "markup_center": ("render", "{{ ('x' | safe).center(2000000000) }}", VALUE),
    "method_through_attr_filter": ("render", "{{ ('x' | attr('center'))(2000000000) }}", VALUE),
    "ljust": ("render", "{{ 'x'.ljust(2000000000) }}", VALUE),
    "rjust": ("render", "{{ 'x'.rjust(2000000000) }}", VALUE),
    "center_method": ("render", "{{ 'x'.center(2000000000) }}", VALUE),
    "zfill": ("render", "{{ '1'.zfill(2000000000) }}", VALUE),
    "expandtabs": ("render", "{{ ('\t' * 100000).expandtabs(100000) }}", VALUE),
    "translate": ("render", "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}", VALUE),
    "to_bytes": ("render", "{{ (1).to_bytes(2000000000, 'big') }}", VALUE),
    "replace_filter": ("render", "{{ ('x' * 200000) | replace('x', 'y' * 100000) }}", VALUE),
    "replace_method": ("render", "{{ ('x' * 200000).replace('x', 'y' * 100000) }}", VALUE),
    "join_filter": ("render", "{{ (['x' * 200000] * 200000) | join }}", VALUE),
    "join_method": ("render", "{{ ''.join(['x' * 200000] * 200000) }}", VALUE),
    "indent_filter": ("render", "{{ ('a\n' * 100000) | indent(100000) }}", VALUE),
    "wordwrap_wrapstring": ("render", "{{ ('a ' * 100000) | wordwrap(1, wrapstring='x' * 100000) }}", VALUE),
    "wordwrap_large_input": ("render", "{{ ('a ' * 4000000) | wordwrap(5) }}", STEP),
    "lipsum": ("render", "{{ lipsum(3000000) }}", VALUE),
    "chained_powers": ("render", "{{ ((9**999)**999)**999 }}", INTEGER),
    "power_in_expression": ("evaluate", "((9**999)**999)**999 > 1", INTEGER),
    "percent_star_width": ("render", "{{ '%*s' % (2000000000, 'x') }}", VALUE),
    "percent_precision": ("render", "{{ '%.2000000000f' % 1.0 }}", VALUE),
    "percent_big_value": ("render", "{{ '%s' % ([['x' * 1000] * 1000] * 1000,) }}", VALUE),
    "format_filter_star": ("render", "{{ '%*s' | format(2000000000, 'x') }}", VALUE),
    "list_multiplication_then_sum": ("render", "{{ ([[1] * 200000] * 200000) | sum(start=[]) }}", VALUE),
    "string_times_inside_for": ("render", "{% set ns = namespace(s='') %}{% for i in range(100000) %}"
                                "{% set ns.s = ns.s ~ ('x' * 100000) %}{% endfor %}", ALLOCATED),
    "set_block_capture": ("render", "{% set x %}{% for i in range(1000000) %}{{ 'x' * 100000 }}"
                          "{% endfor %}{% endset %}{{ x | length }}", VALUE),
    "filter_block": ("render", "{% filter upper %}{% for i in range(1000000) %}{{ 'x' * 100000 }}"
                     "{% endfor %}{% endfilter %}", VALUE),
    "tojson_of_shared_data": ("render", "{{ [[['x' * 1000] * 1000] * 1000] | tojson }}", VALUE),
    "print_shared_data": ("render", "{{ [['x' * 1000] * 1000] * 1000 }}", VALUE),
    "concat_shared_data": ("render", "{{ 'a' ~ [['x' * 1000] * 1000] * 1000 }}", VALUE),
    "string_filter_shared_data": ("render", "{{ ([['x' * 1000] * 1000] * 1000) | string }}", VALUE),
    "pprint_shared_data": ("render", "{{ ([['x' * 1000] * 1000] * 1000) | pprint }}",
                           r"over budget.*pprint accepts values of at most 1,048,576 characters \(templates\.maxOutput\)"),
    "batch_fill": ("render", "{{ [1] | batch(2000000000, 'x') | list }}", VALUE),
    "slice_count": ("render", "{{ [1] | slice(200000000) | list }}", VALUE),
    "list_of_characters": ("render", "{% set ns = namespace(s='x' * 100000) %}{% for i in range(6) %}"
                           "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | list | length }}", VALUE),
    "range_list": ("render", "{{ range(1000000000) | list }}", VALUE),
    "many_live_values": ("render", "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
                         "{% set ns.l = ns.l + [('x' * 200000) ~ i] %}{% endfor %}", ALLOCATED),
    "exponential_macro": ("render", "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                          "{% endmacro %}{{ f(60) }}", CPU),
    "nested_loops": ("render", "{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}"
                     "{% endfor %}", CPU),
    "joiner_in_loop": ("render", "{% set j = joiner('x' * 100000) %}{% for i in range(1000000) %}{{ j() }}"
                       "{% endfor %}", OUTPUT),
    "cycler_in_loop": ("render", "{% set c = cycler('x' * 100000, 'y') %}{% set ns = namespace(s='') %}"
                       "{% for i in range(1000000) %}{% set ns.s = ns.s ~ c.next() %}{% endfor %}", ALLOCATED),
}


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _attack(source: str, kind: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, source, kind], cwd=cwd, capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_ends_in_a_clear_error_in_bounded_cpu_and_memory(name: str, tmp_path: Path):
    kind, source, expected = ATTACKS[name]
    report = _attack(source, kind, tmp_path)
    assert re.search(expected, report["result"]), report["result"]
    assert "out of memory" not in report["result"]
    # "a value would take" is the check after a value was built: each attack is refused before.
    assert not re.search(r"over budget( at line \d+)?: a value would take", report["result"]), report
    assert report["cpu"] < CPU_SECONDS, report
    assert report["rss_kib"] < MEMORY // 1024, report


def test_recursion_without_end_is_a_template_error():
    with pytest.raises(templates.TemplateError, match="recursion too deep"):
        templates.render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", {})


def test_legitimate_templates_render_within_the_budget():
    sources = [{"title": f"t{i}", "body": "word " * 40} for i in range(2000)]
    source = ("{% for s in sources %}## {{ s.title | upper }}\n{{ s.body | wordwrap(60) | indent(2) }}\n"
              "{% endfor %}{{ sources | map(attribute='title') | map('upper') | join(', ') | length }}"
              "{{ '%05d|%-6s|' % (42, 'ab') }}{{ '{:>6}|{:.2f}'.format('x', 2.5) }}{{ 2 ** 64 }}")
    out = templates.render(source, {"sources": sources})
    assert out.count("## T") == 2000
    joined = len(", ".join(s["title"].upper() for s in sources))
    assert out.endswith(f"{joined}00042|ab    |     x|2.50{2 ** 64}")
    assert 400_000 < len(out) < templates.Limits().max_output
    assert templates.evaluate("items | map('upper') | list", {"items": ["a", "b"]}) == ["A", "B"]
    assert templates.render("{{ range(3) | list }} {{ [1, 2] | sum }} {{ 'a b'.split() }}", {}) == \
        "[0, 1, 2] 3 ['a', 'b']"


def test_cpu_budget_is_cpu_time_and_a_setting():
    limits = templates.Limits(max_cpu=0.2)
    start = time.process_time()
    with pytest.raises(templates.TemplateError, match=r"more than 0\.2 s of CPU \(templates\.maxCpu\)"):
        templates.render("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}",
                         {}, limits=limits)
    assert time.process_time() - start < 1.0


def test_defaults_are_the_contract_and_config_yaml_sets_them(tmp_path: Path):
    assert templates.Limits() == templates.Limits(max_output=1 << 20, max_intermediate=10 << 20, max_cpu=1.0)
    assert templates.limits_from_config(tmp_path) == templates.Limits()
    (tmp_path / "config.yaml").write_text("retention: 30d\ntemplates:\n  maxOutput: 64Ki\n"
                                          "  maxIntermediate: 100000\n  maxCpu: 500ms\n")
    limits = templates.limits_from_config(tmp_path)
    assert limits == templates.Limits(max_output=65536, max_intermediate=100000, max_cpu=0.5)
    try:
        assert templates.configure_from_home(tmp_path) == limits
        assert len(templates.render("{{ 'x' * 65536 }}", {})) == 65536
        with pytest.raises(templates.TemplateError, match="65,536 characters, templates.maxOutput"):
            templates.render("{{ 'x' * 65537 }}", {})
        with pytest.raises(templates.TemplateError, match="100,001 bytes.*templates.maxIntermediate"):
            templates.evaluate("('x' * 100001) | length", {})
        templates.configure(templates.Limits(max_output=10))
        with pytest.raises(templates.TemplateError, match="over 10 characters"):
            templates.render("{{ 'x' * 11 }}", {})
        templates.configure(None)  # the home's settings again
        assert templates.render("{{ 'x' * 11 }}", {}) == "x" * 11
    finally:
        template_settings.use_home(None)
    assert len(templates.render("{{ 'x' * 65537 }}", {})) == 65537


@pytest.mark.parametrize(("text", "message"), [
    ("templates:\n  maxOutput: lots\n", r"templates.maxOutput: 'lots' is not a size"),
    ("templates:\n  maxCpu: fast\n", r"templates.maxCpu: 'fast' is not a duration"),
    ("templates:\n  maxOuput: 1Mi\n", r"templates.maxOuput is not a setting \(known: maxOutput"),
    ("templates: 5\n", r"templates must be a mapping"),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, text: str, message: str):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(UsageError, match=message):
        templates.limits_from_config(tmp_path)


STATIC = HEADER + """kind: Pipeline
metadata: {name: bomb}
spec:
  params: {topic: {type: string}, n: {type: integer, default: 3}}
  stages:
    - name: one
      agent: writer
      input: |
        Intro for {{ params.topic }}
        {% set ns = namespace(s='ab') %}
        {% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}
        {{ ns.s }}
    - name: two
      agent: writer
      input: "{{ '{:>2000000000}'.format('x') }}"
      when: "{{ ((9**999)**999)**999 > 1 }}"
    - name: three
      agent: writer
      input: "{{ params.topic * params.n }} {{ lipsum(n=2, min=3, max=5) }}"
---
""" + HEADER + """kind: Agent
metadata: {name: writer}
spec:
  model: fast
  instructions: |
    You are {{ agent.name }}.
    {% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}
---
""" + HEADER + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n"


def test_validate_locates_templates_over_budget_whatever_the_context(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(STATIC)
    start = time.monotonic()
    proc = subprocess.run(AGENTFORM + ["validate", "a.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, preexec_fn=_limit)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "a.yaml:12:9: template over budget in spec.stages[0].input: the result of '~' would take "
        "16,777,216 bytes, over the 10 MiB limit for any value (templates.maxIntermediate)",
        "a.yaml:16:15: template over budget in spec.stages[1].input: a field of format() would take "
        "2,000,000,001 bytes, over the 10 MiB limit for any value (templates.maxIntermediate)",
        "a.yaml:17:14: template over budget in spec.stages[1].when: the result of '**' would be an "
        "integer of more than 65536 bits",
        "a.yaml:29:5: template over budget in spec.instructions: template used more than 1 s of CPU "
        "(templates.maxCpu)",
    ], proc.stdout
    assert "stages[2]" not in proc.stdout  # depends on params: only the run can tell
    assert time.monotonic() - start < 30


def _project(folder: Path, instructions: str, stage_input: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "script.yaml").write_text(json.dumps({"agents": {"writer": [{"content": "ok"}] * 3}}))
    docs = [
        "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: script.yaml}\n",
        f"kind: Agent\nmetadata: {{name: writer}}\nspec: {{model: m, instructions: {json.dumps(instructions)}}}\n",
        "kind: Agent\nmetadata: {name: plain}\nspec: {model: m, instructions: Plain.}\n",
        "kind: Pipeline\nmetadata: {name: p}\nspec:\n  params: {n: {type: integer, default: 100000000}}\n"
        f"  stages:\n    - {{name: gen, agent: plain, input: {json.dumps(stage_input)}}}\n",
    ]
    (folder / "m.yaml").write_text("---\n".join(HEADER + d for d in docs))
    return folder


def test_over_budget_at_run_time_fails_the_stage_or_agent_that_renders(store, tmp_path: Path):
    from agentform.engine.reconcile import apply_path
    from agentform.engine.runtime import runner
    from agentform.engine.validation import validate_path

    folder = _project(tmp_path / "m", "You are {{ agent.name }}.\n{{ agent.name * 100000000 }}",
                      "{{ 'ab' * params.n }}")
    assert validate_path(folder).diagnostics == []  # both depend on the run's context
    home = tmp_path / "home"
    assert apply_path(store, folder, home=home).exit_code == 0

    staged = runner.start_run(store, "pipeline/p", home=home)
    assert staged.status == "failed"
    assert re.search(r"stage 'gen' .*input: .*over budget: the result of '\*' would take 200,000,000 bytes"
                     r".*templates\.maxIntermediate", staged.error), staged.error
    failed = [e for e in store.read_events(staged.id) if e.type == "stage.failed"]
    assert [e.path for e in failed] == ["p/gen"]
    assert "templates.maxIntermediate" in failed[0].data["error"]

    agent = runner.start_run(store, "agent/writer", home=home)
    assert agent.status == "failed"
    events = store.read_events(agent.id)
    failed = [e for e in events if e.type == "agent.failed"]
    assert [e.path for e in failed] == ["writer"]
    assert re.search(r"over budget at line 2: the result of '\*' would take 600,000,000 bytes",
                     failed[0].data["error"]), failed[0].data["error"]


def test_the_cli_reads_the_budget_from_the_home_config(tmp_path: Path):
    """``--home``'s config.yaml sets the budget of every render the CLI makes (validate included)."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        HEADER + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml}\n---\n"
        + HEADER + "kind: Agent\nmetadata: {name: w}\nspec:\n  model: m\n"
        "  instructions: \"{{ 'x' * 5000 }}\"\n")
    (folder / "s.yaml").write_text("agents: {w: [{content: ok}]}\n")
    home = tmp_path / "home"
    home.mkdir()
    default = subprocess.run(AGENTFORM + ["--home", str(home), "validate", "a.yaml"], cwd=folder,
                             capture_output=True, text=True, timeout=120)
    assert default.returncode == 0, default.stdout + default.stderr
    (home / "config.yaml").write_text("templates:\n  maxIntermediate: 1Ki\n")
    small = subprocess.run(AGENTFORM + ["--home", str(home), "validate", "a.yaml"], cwd=folder,
                           capture_output=True, text=True, timeout=120)
    assert small.returncode == 1, small.stdout + small.stderr
    assert "templates.maxIntermediate" in small.stdout and "a.yaml:" in small.stdout, small.stdout
