"""engine/templates.py: rendering, expressions, syntax checks, referenced names, limits."""

from __future__ import annotations

import pytest

from agentform.engine import templates
from agentform.engine.errors import RunError


def test_render_with_context():
    out = templates.render("Hi {{ params.topic }}{% for s in items %} {{ s }}{% endfor %}",
                           {"params": {"topic": "llms"}, "items": [1, 2]})
    assert out == "Hi llms 1 2"


def test_undefined_names_are_errors():
    with pytest.raises(templates.TemplateError, match="'missing' is undefined"):
        templates.render("{{ missing }}", {})
    assert issubclass(templates.TemplateError, RunError)


def test_evaluate_returns_native_values_and_strips_wrapper():
    ctx = {"stages": {"research": {"output": {"sources": ["a", "b"]}}}, "output": "please REVISE"}
    assert templates.evaluate("{{ stages.research.output.sources }}", ctx) == ["a", "b"]
    assert templates.evaluate("'REVISE' in output", ctx) is True
    assert templates.evaluate("{{ 1 + 2 }}", {}) == 3
    with pytest.raises(templates.TemplateError, match="expression error"):
        templates.evaluate("nope.x", {})


def test_sandbox_blocks_escapes():
    with pytest.raises(templates.TemplateError, match="unsafe"):
        templates.render("{{ x.__class__.__mro__ }}", {"x": 1})
    with pytest.raises(templates.TemplateError, match="unsafe"):
        templates.render("{{ cycler.__init__.__globals__ }}", {})
    with pytest.raises(templates.TemplateError, match="unsafe"):  # Markup's format is sandboxed too
        templates.render("{{ ('{0.__class__}' | safe).format(1) }}", {})
    with pytest.raises(templates.TemplateError):  # immutable: no mutation of context data
        templates.render("{{ items.append(1) }}", {"items": []})


@pytest.mark.parametrize("source", [
    "{{ 'a' * 300000000 }}",
    "{{ 'ab' + 'c' * 10485759 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ 'a' | center(999999999) }}",
    "{{ '%999999999d' | format(1) }}",
    "{% for i in range(10000000) %}{% endfor %}",
    "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}",
])
def test_resource_exhaustion_is_refused(source):
    with pytest.raises(templates.TemplateError, match="over budget|too large"):
        templates.render(source, {})


def test_output_cap_is_configurable():
    assert templates.render("{{ 'x' * 50 }}", {}, max_chars=100) == "x" * 50
    with pytest.raises(templates.TemplateError, match="too large"):
        templates.render("{{ 'x' * 50 }}{{ 'y' * 60 }}", {}, max_chars=100)
    small = templates.Limits(max_output=100, max_intermediate=1000, max_cpu=1.0)
    with pytest.raises(templates.TemplateError, match="maxIntermediate"):
        templates.render("{{ ('x' * 1001) | length }}", {}, limits=small)
    assert templates.render("{{ ('x' * 1000) | length }}", {}, limits=small) == "1000"


def test_macros_render_and_validate(tree):
    source = ("{% macro item(x, mark='-') %}{{ mark }} {{ x }}{{ caller() if caller is defined else '' }}"
              "{% endmacro %}{{ item(agent.name) }}|{% call item('b') %}!{% endcall %}")
    assert templates.render(source, {"agent": {"name": "a"}}) == "- a|- b!"
    assert templates.undeclared(templates.parse(source)) == {"agent"}
    header = "apiVersion: agentform.dev/v1alpha1\n"
    manifest = (header + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n---\n"
                + header + "kind: Agent\nmetadata: {name: writer}\nspec:\n  model: fast\n"
                "  instructions: |\n    " + source + "\n")
    assert tree({"a.yaml": manifest}) == []


def test_check_syntax():
    assert templates.check_syntax("plain text") is None
    assert templates.check_syntax("{{ ok }}") is None
    assert templates.check_syntax("one\n{{ bad }") == "line 2: unexpected '}'"
    assert templates.expression_error("a == ") is not None
    assert templates.expression_error("{{ a == 1 }}") is None
    assert templates.expression_error("a }} b {{ c") is not None


def test_referenced_names():
    src = ("{{ stages['per-source'].output }} {{ params.topic | upper }}"
           "{% for x in stages.research.output.sources %}{{ x.title }}{% endfor %}")
    assert templates.referenced(src) == {
        "stages.per-source.output", "params.topic", "stages.research.output.sources", "x.title",
    }
    assert templates.referenced_expression("{{ stages.a.status == 'failed' }}") == {"stages.a.status"}
    assert templates.referenced("no template") == set()
