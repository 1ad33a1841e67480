"""Broken manifests, one problem each: the exact ``file:line:col: message`` that validate prints."""

from __future__ import annotations

import pytest

H = "apiVersion: agentform.dev/v1alpha1\n"
M = H + "kind: Model\nmetadata: {name: fast}\nspec: {model: openai/gpt-4o-mini}\n"
A = H + "kind: Agent\nmetadata: {name: helper}\nspec: {model: fast}\n"
BASE = M + "---\n" + A

def agent(spec, name="writer"):
    return H + f"kind: Agent\nmetadata: {{name: {name}}}\nspec:\n" + spec

def pipeline(spec, name="flow"):
    return H + f"kind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n" + spec

def team(spec, name="crew"):
    return H + f"kind: Team\nmetadata: {{name: {name}}}\nspec:\n" + spec

CASES: dict[str, dict[str, str]] = {
 "unknown_field_typo": {"a.yaml": M + "---\n" + agent("  model: fast\n  instructons: hi\n")},
 "missing_field": {"a.yaml": M + "---\n" + agent("  description: x\n")},
 "wrong_type_int": {"a.yaml": M + "---\n" + agent("  model: fast\n  budget:\n    maxTurns: ten\n")},
 "wrong_type_list": {"a.yaml": M + "---\n" + agent("  model: fast\n  tools: workspace\n")},
 "enum_typo": {"a.yaml": H + "kind: ToolServer\nmetadata: {name: git}\nspec:\n  transport: stdoi\n  command: [git]\n"},
 "negative_number": {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspec:\n  model: x\n  retries: -1\n"},
 "bad_duration": {"a.yaml": M + "---\n" + agent("  model: fast\n  budget: {timeout: 5 minutes}\n")},
 "bad_quantity": {"a.yaml": H + "kind: Workspace\nmetadata: {name: w}\nspec:\n  limits: {memory: lots}\n"},
 "bad_name": {"a.yaml": H + "kind: Model\nmetadata:\n  name: Fast_Model\nspec: {model: x}\n"},
 "name_too_long": {"a.yaml": H + "kind: Model\nmetadata:\n  name: " + "a" * 64 + "\nspec: {model: x}\n"},
 "missing_api_version": {"a.yaml": "kind: Model\nmetadata: {name: m}\nspec: {model: x}\n"},
 "unknown_api_version": {"a.yaml": "apiVersion: agentform.dev/v2\nkind: Model\nmetadata: {name: m}\nspec: {model: x}\n"},
 "api_version_typo": {"a.yaml": "apiVersion: agentfrom.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec: {model: x}\n"},
 "kind_typo": {"a.yaml": H + "kind: Agnet\nmetadata: {name: m}\nspec: {model: x}\n"},
 "missing_kind_in_manifest_file": {"a.yaml": M + "---\n" + H + "metadata: {name: m}\nspec: {model: x}\n"},
 "non_mapping_document": {"a.yaml": M + "---\n- just\n- a list\n"},
 "stdio_needs_command": {"a.yaml": H + "kind: ToolServer\nmetadata: {name: git}\nspec:\n  transport: stdio\n"},
 "http_needs_url": {"a.yaml": H + "kind: ToolServer\nmetadata: {name: git}\nspec:\n  transport: http\n"},
 "scripted_needs_script": {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspec:\n  model: scripted\n"},
 "docker_needs_image": {"a.yaml": H + "kind: Workspace\nmetadata: {name: w}\nspec:\n  backend: docker\n"},
 "secret_two_sources": {"a.yaml": H + "kind: Secret\nmetadata: {name: s}\nspec:\n  fromEnv: A\n  fromFile: /x\n"},
 "stage_two_targets": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: one\n      agent: helper\n      team: crew\n")},
 "secretref_wrong_type": {"a.yaml": H + "kind: ToolServer\nmetadata: {name: git}\nspec:\n  command: [git]\n  env:\n    TOKEN: 5\n"},
 "unknown_reference": {"a.yaml": M + "---\n" + agent("  model: fats\n")},
 "reference_wrong_kind": {"a.yaml": M + "---\n" + A + "---\n" + agent("  model: helper\n")},
 "reference_other_namespace": {"a.yaml": M + "---\n" + agent("  model: {name: fast, namespace: prod}\n")},
 "duplicate_resource": {"a.yaml": M + "---\n" + M},
 "team_cycle": {"a.yaml": BASE + "---\n" + team("  manager: helper\n  members: [{team: crew2}]\n") + "---\n" + team("  manager: helper\n  members:\n    - team: crew\n", "crew2")},
 "needs_unknown": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper}\n    - {name: two, agent: helper, needs: [onee]}\n")},
 "needs_cycle": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper, needs: [two]}\n    - {name: two, agent: helper, needs: [one]}\n")},
 "duplicate_stage": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper}\n    - {name: one, agent: helper}\n")},
 "goto_unknown": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: one\n      agent: helper\n      maxVisits: 2\n      routes: [{when: 'true', goto: zero}]\n")},
 "goto_not_upstream": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: one\n      agent: helper\n      maxVisits: 2\n      routes: [{when: 'true', goto: two}]\n    - {name: two, agent: helper, needs: [one]}\n")},
 "loop_without_max_visits": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: draft, agent: helper}\n    - name: review\n      agent: helper\n      needs: [draft]\n      routes:\n        - when: \"'REVISE' in output\"\n          goto: draft\n")},
 "template_syntax_block": {"a.yaml": M + "---\n" + agent("  model: fast\n  instructions: |\n    Line one.\n    Line two {{ agent.name }\n")},
 "template_syntax_inline": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper, input: 'Go {% if x %}'}\n")},
 "expression_syntax": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: one\n      agent: helper\n      when: \"{{ params.x == }}\"\n")},
 "stage_not_upstream": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper}\n    - name: two\n      agent: helper\n      input: \"{{ stages.one.output }}\"\n")},
 "param_not_declared": {"a.yaml": BASE + "---\n" + pipeline("  params: {topic: {type: string}}\n  stages:\n    - name: one\n      agent: helper\n      input: \"About {{ params.topc }}\"\n")},
 "hyphenated_stage": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: per-source, agent: helper}\n    - name: two\n      agent: helper\n      needs: [per-source]\n      input: \"{{ stages.per-source.output }}\"\n")},
 "item_without_foreach": {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: one\n      agent: helper\n      input: \"{{ item }}\"\n")},
 "tool_arguments_template": {"a.yaml": BASE + "---\n" + H + "kind: ToolServer\nmetadata: {name: git}\nspec: {command: [git]}\n---\n" + pipeline("  stages:\n    - name: one\n      tool:\n        toolServer: git\n        name: git_status\n        arguments: {repo: \"{{ workspace.path \"}\n")},
 "tool_name_too_long": {"a.yaml": M + "---\n" + agent("  model: fast\n", "a" * 61) + "---\n" + team("  manager: boss\n  members:\n    - agent: " + "a" * 61 + "\n") + "---\n" + agent("  model: fast\n", "boss")},
 "tool_name_clash": {"a.yaml": BASE + "---\n" + team("  manager: boss\n  members:\n    - agent: helper\n    - {agent: {name: helper, namespace: default}, mode: orchestrate}\n") + "---\n" + agent("  model: fast\n", "boss")},
 "workspace_shared": {"a.yaml": BASE + "---\n" + H + "kind: Workspace\nmetadata: {name: room}\nspec: {}\n---\n" + team("  manager: boss\n  members: [{agent: helper}]\n  workspace: room\n") + "---\n" + pipeline("  workspace: room\n  stages: [{name: one, agent: helper}]\n") + "---\n" + agent("  model: fast\n", "boss")},
 "script_missing": {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: scripts/none.yaml}\n"},
 "script_bad_turn": {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml}\n" + "---\n" + H + "kind: Agent\nmetadata: {name: lead}\nspec: {model: m}\n", "s.yaml": "agents:\n  lead:\n    - content: hi\n    - latency: 1s\n"},
 "script_unknown_agent": {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspec: {model: scripted, script: s.yaml}\n" + "---\n" + H + "kind: Agent\nmetadata: {name: lead}\nspec: {model: m}\n", "s.yaml": "agents:\n  lead:\n    - content: hi\n  summarize[2]/leed:\n    - content: x\n"},
 "duplicate_key": {"a.yaml": M + "---\n" + agent("  model: fast\n  model: slow\n")},
 "python_tag": {"a.yaml": M + "---\n" + agent("  model: fast\n  description: !!python/object/apply:os.system [ls]\n")},
 "yaml_syntax": {"a.yaml": M + "---\n" + agent("  model: [fast\n")},
 "missing_fields_two": {"a.yaml": team("  mode: orchestrate\n")},
 "output_schema_invalid": {"a.yaml": M + "---\n" + agent("  model: fast\n  output:\n    schema: {type: objekt}\n")},
}


EXPECTED: dict[str, list[str]] = {
    'unknown_field_typo': [
        "a.yaml:11:3: unknown field 'instructons' in Agent spec (did you mean 'instructions'?)",
    ],
    'missing_field': [
        "a.yaml:10:3: missing required field 'model' in Agent spec",
    ],
    'wrong_type_int': [
        "a.yaml:12:15: spec.budget.maxTurns: must be an integer (got 'ten')",
    ],
    'wrong_type_list': [
        "a.yaml:11:10: spec.tools: must be a list (got 'workspace')",
    ],
    'enum_typo': [
        "a.yaml:5:14: spec.transport: must be one of 'stdio', 'http' or 'sse' (got 'stdoi') (did you mean 'stdio'?)",
    ],
    'negative_number': [
        'a.yaml:6:12: spec.retries: must be at least 0 (got -1)',
    ],
    'bad_duration': [
        "a.yaml:11:21: spec.budget.timeout: '5 minutes' is not a duration: use forms like 30s, 5m, 1h30m, 200ms",
    ],
    'bad_quantity': [
        "a.yaml:5:20: spec.limits.memory: 'lots' is not a memory quantity: use forms like 512Mi or 2Gi",
    ],
    'bad_name': [
        "a.yaml:4:9: metadata.name: 'Fast_Model' is not a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
    ],
    'name_too_long': [
        'a.yaml:4:9: metadata.name: must be at most 63 characters (got 64)',
    ],
    'missing_api_version': [
        "a.yaml:1:1: missing apiVersion (expected 'agentform.dev/v1alpha1')",
    ],
    'unknown_api_version': [
        "a.yaml:1:13: unknown apiVersion 'agentform.dev/v2': this agentform reads 'agentform.dev/v1alpha1'",
    ],
    'api_version_typo': [
        "a.yaml:1:13: apiVersion 'agentfrom.dev/v1alpha1' is not an agentform apiVersion (did you mean 'agentform.dev/v1alpha1'?)",
    ],
    'kind_typo': [
        "a.yaml:2:7: unknown kind 'Agnet' (did you mean 'Agent'?)",
    ],
    'missing_kind_in_manifest_file': [
        'a.yaml:6:1: missing kind (one of: Secret, Model, ToolServer, Workspace, KnowledgeBase, Agent, Team, Pipeline)',
    ],
    'non_mapping_document': [
        'a.yaml:6:1: document 2 is a list, not a mapping: every document of a manifest file must be a manifest (apiVersion, kind, metadata, spec)',
    ],
    'stdio_needs_command': [
        "a.yaml:5:3: a stdio ToolServer needs 'command' (the server's argv)",
    ],
    'http_needs_url': [
        "a.yaml:5:3: an http ToolServer needs 'url'",
    ],
    'scripted_needs_script': [
        "a.yaml:5:3: a scripted Model needs 'script' (a path relative to this file)",
    ],
    'docker_needs_image': [
        "a.yaml:5:3: a docker Workspace needs 'image'",
    ],
    'secret_two_sources': [
        'a.yaml:5:3: a Secret needs exactly one of: sealed, fromEnv, fromFile (found fromEnv, fromFile)',
    ],
    'stage_two_targets': [
        "a.yaml:16:7: stage 'one' needs exactly one of: agent, team, pipeline, tool, approval (found agent, team)",
    ],
    'secretref_wrong_type': [
        'a.yaml:7:12: spec.env.TOKEN: must be a string or a mapping {secretRef: NAME} (got 5)',
    ],
    'unknown_reference': [
        "a.yaml:10:10: unknown Model 'fats' in namespace 'default' (did you mean 'fast'?)",
    ],
    'reference_wrong_kind': [
        "a.yaml:15:10: 'helper' is an Agent, not a Model",
    ],
    'reference_other_namespace': [
        "a.yaml:10:17: unknown Model 'fast' in namespace 'prod'",
    ],
    'duplicate_resource': [
        "a.yaml:8:18: duplicate Model 'fast' in namespace 'default' (also defined at a.yaml:3:18)",
    ],
    'team_cycle': [
        'a.yaml:24:13: team membership cycle: crew -> crew2 -> crew',
    ],
    'needs_unknown': [
        "a.yaml:17:42: stage 'two' needs unknown stage 'onee' (did you mean 'one'?)",
    ],
    'needs_cycle': [
        'a.yaml:17:42: needs cycle: one -> two -> one',
    ],
    'duplicate_stage': [
        "a.yaml:17:14: duplicate stage name 'one' (first at line 16)",
    ],
    'goto_unknown': [
        "a.yaml:19:37: route goes to unknown stage 'zero'",
    ],
    'goto_not_upstream': [
        "a.yaml:19:37: route goto 'two' must name a stage upstream of 'one' (one it needs, directly or through other stages)",
    ],
    'loop_without_max_visits': [
        "a.yaml:22:17: stage 'review' loops back to 'draft' without maxVisits (set maxVisits to bound the loop)",
    ],
    'template_syntax_block': [
        "a.yaml:13:5: template syntax error in spec.instructions: unexpected '}'",
    ],
    'template_syntax_inline': [
        "a.yaml:16:42: template syntax error in spec.stages[0].input: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
    ],
    'expression_syntax': [
        "a.yaml:18:14: expression syntax error in spec.stages[0].when: unexpected 'end of template'",
    ],
    'stage_not_upstream': [
        "a.yaml:19:18: spec.stages[1].input: stage 'one' is not upstream of this stage (add it to needs)",
    ],
    'param_not_declared': [
        "a.yaml:19:24: spec.stages[0].input: param 'topc' is not declared in spec.params (did you mean 'topic'?)",
    ],
    'hyphenated_stage': [
        "a.yaml:20:18: 'stages.per-source' reads as 'stages.per' minus 'source': write stages['per-source']",
    ],
    'item_without_foreach': [
        "a.yaml:18:18: spec.stages[0].input: 'item' is only set in a stage with forEach",
    ],
    'tool_arguments_template': [
        "a.yaml:25:28: template syntax error in spec.stages[0].tool.arguments.repo: unexpected end of template, expected 'end of print statement'.",
    ],
    'tool_name_too_long': [
        "a.yaml:18:14: member 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' gives the manager a tool name longer than 64 characters ('ask_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 65); use a shorter name",
    ],
    'tool_name_clash': [
        "a.yaml:18:22: two members give the manager the same tool 'ask_helper' (the other is the member at line 17)",
    ],
    'workspace_shared': [
        "a.yaml:28:14: Workspace 'room' is already used by Team 'crew' (a.yaml:22:14); a workspace belongs to one Team or Pipeline",
    ],
    'script_missing': [
        "a.yaml:4:33: script file 'scripts/none.yaml' not found (paths are relative to this manifest's folder)",
    ],
    'script_bad_turn': [
        "s.yaml:4:7: a turn needs 'content', 'toolCalls' or 'error'",
    ],
    'script_unknown_agent': [
        "s.yaml:4:3: script key 'summarize[2]/leed': no Agent 'leed' in namespace 'default' (did you mean 'lead'?)",
    ],
    'duplicate_key': [
        "a.yaml:11:3: duplicate key 'model' (first at line 10)",
    ],
    'python_tag': [
        "a.yaml:11:16: tag '!!python/object/apply:os.system' is not allowed: only the YAML core schema (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) is accepted",
    ],
    'yaml_syntax': [
        "a.yaml:11:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)",
    ],
    'missing_fields_two': [
        "a.yaml:5:3: missing required fields 'manager', 'members' in Team spec",
    ],
    'output_schema_invalid': [
        "a.yaml:12:20: spec.output.schema is not a valid JSON Schema: 'objekt' is not valid under any of the given schemas",
    ],
}

EXTRA_CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "param_default_wrong_type": (
        {"a.yaml": BASE + "---\n" + pipeline("  params:\n    depth: {type: integer, default: deep}\n  stages: [{name: one, agent: helper}]\n")},
        ["a.yaml:16:37: param 'depth': default 'deep' is not an integer"],
    ),
    "param_default_not_in_enum": (
        {"a.yaml": BASE + "---\n" + pipeline("  params:\n    depth: {type: integer, default: 5, enum: [1, 2]}\n  stages: [{name: one, agent: helper}]\n")},
        ["a.yaml:16:37: param 'depth': default 5 is not one of its enum values"],
    ),
    "model_fallback_cycle": (
        {"a.yaml": H + "kind: Model\nmetadata: {name: a}\nspec: {model: x, fallbacks: [b]}\n---\n"
         + H + "kind: Model\nmetadata: {name: b}\nspec: {model: y, fallbacks: [a]}\n"},
        ["a.yaml:9:30: model fallback cycle: a -> b -> a"],
    ),
    "union_alternative_collapsed": (
        {"a.yaml": H + "kind: KnowledgeBase\nmetadata: {name: k}\nspec:\n  sources: [{path: x}]\n  store: {qdrant: {url: 5}}\n"},
        ["a.yaml:6:25: spec.store.qdrant.url: must be a string (got 5)"],
    ),
    "top_level_typo": (
        {"a.yaml": H + "kind: Model\nmetadata: {name: m}\nspecs: {model: x}\n"},
        ["a.yaml:4:1: unknown field 'specs' in Model (did you mean 'spec'?)"],
    ),
    "reference_as_mapping_typo": (
        {"a.yaml": M + "---\n" + agent("  model: {nam: fast}\n")},
        ["a.yaml:10:11: unknown field 'nam' in spec.model (did you mean 'name'?)"],
    ),
    "tool_entry_two_kinds": (
        {"a.yaml": M + "---\n" + agent("  model: fast\n  tools:\n    - {toolServer: git, builtin: workspace}\n")},
        ["a.yaml:12:7: a tool entry needs exactly one of: toolServer, builtin, knowledge (found toolServer, builtin)"],
    ),
    "chunk_overlap": (
        {"a.yaml": H + "kind: KnowledgeBase\nmetadata: {name: k}\nspec:\n  sources: [{path: x}]\n  chunk: {size: 100, overlap: 200}\n"},
        ["a.yaml:6:10: chunk overlap must be smaller than chunk size"],
    ),
    "unknown_name_in_stage_template": (
        {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: one, agent: helper, input: '{{ topic }}'}\n")},
        ["a.yaml:16:45: spec.stages[0].input: unknown name 'topic' (available: now, params, run, stages, workspace)"],
    ),
    "unknown_name_in_instructions": (
        {"a.yaml": M + "---\n" + agent("  model: fast\n  instructions: |\n    You are {{ agent.name }}.\n    Topic: {{ topic }}\n")},
        ["a.yaml:13:15: spec.instructions: unknown name 'topic' (available: agent, now, params, run, vars, workspace)"],
    ),
    "stage_reads_own_output": (
        {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - name: a\n      agent: helper\n      forEach: \"{{ stages.a.output }}\"\n")},
        ["a.yaml:18:20: spec.stages[0].forEach: stage 'a' cannot read its own output here (only a route's when can)"],
    ),
    "kind_empty": (
        {"a.yaml": H + "kind: ''\nmetadata: {name: m}\nspec: {model: x}\n"},
        ["a.yaml:2:7: unknown kind '' (one of: Secret, Model, ToolServer, Workspace, KnowledgeBase, Agent, Team, Pipeline)"],
    ),
    "kind_not_a_string": (
        {"a.yaml": H + "kind: {a: 1}\nmetadata: {name: m}\nspec: {model: x}\n"},
        ["a.yaml:2:7: kind must be a string, one of: Secret, Model, ToolServer, Workspace, KnowledgeBase, Agent, Team, Pipeline"],
    ),
    "route_when_reads_own_output": (
        {"a.yaml": BASE + "---\n" + pipeline("  stages:\n    - {name: a, agent: helper}\n    - name: b\n      agent: helper\n      needs: [a]\n      maxVisits: 2\n      routes: [{when: \"stages.b.output == output\", goto: a}]\n")},
        [],
    ),
}


@pytest.mark.parametrize("name", list(EXTRA_CASES))
def test_more_cases(tree, name):
    files, expected = EXTRA_CASES[name]
    assert tree(files) == expected


@pytest.mark.parametrize("name", list(CASES))
def test_broken_manifest(tree, name):
    assert tree(CASES[name]) == EXPECTED[name]


def test_every_case_reports_exactly_one_problem():
    assert len(CASES) >= 30
    assert all(len(v) == 1 for v in EXPECTED.values()), [k for k, v in EXPECTED.items() if len(v) != 1]


@pytest.mark.parametrize("name", [n for n in CASES if n != "yaml_syntax"])
def test_same_results_with_the_pure_python_parser(tree, monkeypatch, name):
    # Without the C parser (ruamel.yaml.clibz not installed) the loader falls back to ruamel's own.
    from agentform.engine import yamlsafe

    monkeypatch.setattr(yamlsafe, "_CParser", None)
    assert tree(CASES[name]) == EXPECTED[name]


def test_all_problems_in_one_pass_sorted(tree):
    files = {"b.yaml": CASES["unknown_reference"]["a.yaml"], "a.yaml": CASES["kind_typo"]["a.yaml"],
             "c.yaml": CASES["needs_cycle"]["a.yaml"].replace("fast", "quick").replace("helper", "aide")}
    assert tree(files) == [
        EXPECTED["kind_typo"][0],
        "b.yaml:10:10: unknown Model 'fats' in namespace 'default' (did you mean 'fast'?)",
        "c.yaml:17:40: needs cycle: one -> two -> one",
    ]


def test_nested_pipeline_cycle_and_mapping_reference(tree):
    text = BASE + "---\n" + pipeline("  stages:\n    - name: inner\n      pipeline: {name: flow2, namespace: default}\n") \
        + "---\n" + pipeline("  stages:\n    - {name: back, pipeline: flow}\n", "flow2") \
        + "---\n" + pipeline("  stages:\n    - name: x\n      agent: {name: helpr}\n", "flow3")
    assert tree({"a.yaml": text}) == [
        "a.yaml:24:30: pipeline nesting cycle: flow -> flow2 -> flow",
        "a.yaml:32:21: unknown Agent 'helpr' in namespace 'default' (did you mean 'helper'?)",
    ]
