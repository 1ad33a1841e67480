"""Mistakes that used to surface only at run time, caught by validate with a location:
a manager among its own members, and a scripted tool call the agent cannot make."""

from __future__ import annotations

H = "apiVersion: agentform.dev/v1alpha1\n"


def doc(kind: str, name: str, spec: str, namespace: str | None = None) -> str:
    meta = f"{{name: {name}" + (f", namespace: {namespace}}}" if namespace else "}")
    return H + f"kind: {kind}\nmetadata: {meta}\nspec: {spec}\n"


MODEL = doc("Model", "m", "{model: scripted, script: s.yaml}")


def agents(*names: str, **specs: str) -> list[str]:
    return [doc("Agent", n, specs.get(n.replace("-", "_"), "{model: m}")) for n in names]


def files(docs: list[str], script: str) -> dict[str, str]:
    return {"a.yaml": "---\n".join([MODEL, *docs]), "s.yaml": script}


# -- a manager listed among its own members --------------------------------------------

def test_a_manager_among_its_own_members_is_refused_at_the_member(tree):
    team = H + "kind: Team\nmetadata: {name: crew}\nspec:\n  manager: lead\n  members:\n    - agent: helper\n    - agent: lead\n"
    # The same agent managing an outer team and a nested one is two invocations, not a self-call.
    nested = [doc("Team", "inner", "{manager: lead, members: [{agent: helper}]}"),
              doc("Team", "outer", "{manager: lead, members: [{team: inner}]}")]
    out = tree(files([*agents("lead", "helper"), team, *nested], "agents: {lead: [{content: hi}]}\n"))
    assert out == [
        "a.yaml:23:14: agent 'lead' is this team's manager and cannot also be its member (it would get "
        "'ask_lead', a call to itself); remove it from members, or name another manager",
    ]


def test_a_manager_as_its_own_delegate_through_a_namespaced_reference_is_refused(tree):
    team = (H + "kind: Team\nmetadata: {name: crew}\nspec:\n  manager: lead\n  mode: delegate\n  members:\n"
            "    - agent: helper\n    - agent: {name: lead, namespace: default}\n")
    out = tree(files([*agents("lead", "helper"), team], "agents: {lead: [{content: hi}]}\n"))
    assert out == [
        "a.yaml:24:21: agent 'lead' is this team's manager and cannot also be its member (it would get "
        "'transfer_to_lead', a call to itself); remove it from members, or name another manager",
    ]


# -- scripted tool calls -----------------------------------------------------------------

TEAM = doc("Team", "crew", "{manager: lead, members: [{agent: researcher}, {agent: writer, mode: delegate}]}")


def test_a_scripted_call_of_a_tool_the_agent_cannot_have_is_located_at_the_call(tree):
    script = ("agents:\n  lead:\n    - toolCalls:\n        - {name: ask_researcher, arguments: {task: a}}\n"
              "        - {name: ask_nobody, arguments: {task: b}}\n    - content: done\n")
    out = tree(files([*agents("lead", "researcher", "writer"), TEAM], script))
    assert out == [
        "s.yaml:5:18: script key 'lead': agent 'lead' has no tool 'ask_nobody'; "
        "its tools: ask_researcher, transfer_to_writer",
    ]


def test_a_misspelt_scripted_tool_gets_a_did_you_mean(tree):
    script = "agents:\n  lead:\n    - toolCalls:\n        - name: ask_reseacher\n          arguments: {task: a}\n"
    out = tree(files([*agents("lead", "researcher", "writer"), TEAM], script))
    assert out == [
        "s.yaml:4:17: script key 'lead': agent 'lead' has no tool 'ask_reseacher' (did you mean "
        "'ask_researcher'?); its tools: ask_researcher, transfer_to_writer",
    ]


def test_transfer_back_only_for_an_agent_that_can_be_handed_a_conversation(tree):
    # writer is a delegate member: it may transfer_back; researcher is asked: it may not.
    script = ("agents:\n  writer:\n    - toolCalls: [{name: transfer_back, arguments: {summary: s}}]\n"
              "  researcher:\n    - toolCalls: [{name: transfer_back, arguments: {summary: s}}]\n")
    out = tree(files([*agents("lead", "researcher", "writer"), TEAM], script))
    assert out == [
        "s.yaml:5:26: script key 'researcher': agent 'researcher' has no tool 'transfer_back': it has no "
        "tools at all (no team it manages, no tools: entry, not a delegate member)",
    ]


def test_transfer_back_for_the_manager_of_a_delegated_nested_team(tree):
    docs = [*agents("boss", "lead", "researcher", "writer"), TEAM,
            doc("Team", "top", "{manager: boss, members: [{team: crew, mode: delegate}]}")]
    script = ("agents:\n  boss:\n    - toolCalls: [{name: transfer_to_crew, arguments: {reason: r}}]\n"
              "    - toolCalls: [{name: ask_crew, arguments: {task: t}}]\n"
              "  lead:\n    - toolCalls: [{name: transfer_back, arguments: {summary: s}}]\n")
    assert tree(files(docs, script)) == [
        "s.yaml:4:26: script key 'boss': agent 'boss' has no tool 'ask_crew' (did you mean 'transfer_to_crew'? "
        "the member's mode decides which); its tools: transfer_to_crew",
    ]


def test_one_script_key_serves_an_agent_in_every_team_it_manages(tree):
    docs = [*agents("lead", "researcher", "writer"),
            doc("Team", "one", "{manager: lead, members: [{agent: researcher}]}"),
            doc("Team", "two", "{manager: lead, members: [{agent: writer}]}")]
    script = ("agents:\n  lead:\n    - toolCalls: [{name: ask_researcher, arguments: {task: a}}]\n"
              "  two/lead:\n    - toolCalls: [{name: ask_writer, arguments: {task: a}}, {name: ask_lead}]\n")
    assert tree(files(docs, script)) == [
        "s.yaml:5:68: script key 'two/lead': agent 'lead' has no tool 'ask_lead'; "
        "its tools: ask_researcher, ask_writer",
    ]


def test_path_suffix_and_visit_keys_are_checked_as_their_agent(tree):
    script = ("agents:\n  crew/researcher:\n    - toolCalls: [{name: ask_writer, arguments: {task: a}}]\n"
              "  researcher#2:\n    - toolCalls: [{name: ask_lead, arguments: {task: a}}]\n")
    out = tree(files([*agents("lead", "researcher", "writer"), TEAM], script))
    assert out == [
        "s.yaml:3:26: script key 'crew/researcher': agent 'researcher' has no tool 'ask_writer': it has no "
        "tools at all (no team it manages, no tools: entry, not a delegate member)",
        "s.yaml:5:26: script key 'researcher#2': agent 'researcher' has no tool 'ask_lead': it has no "
        "tools at all (no team it manages, no tools: entry, not a delegate member)",
    ]


SERVERS = [
    doc("ToolServer", "listed", "{command: [srv], tools: {allow: [get_time, convert_time]}}"),
    doc("ToolServer", "open", "{command: [srv], tools: {deny: [drop_all]}}"),
]


def test_builtins_knowledge_and_allow_lists_give_their_tool_names(tree):
    lead = ("{model: m, tools: [{builtin: workspace}, {builtin: team-control}, {knowledge: kb},"
            " {toolServer: listed, allow: [get_time]}]}")
    docs = [*agents("lead", lead=lead), *SERVERS,
            doc("KnowledgeBase", "kb", "{sources: [{path: 'docs/*.md'}]}")]
    calls = ["read_file", "run_command", "create_agent", "report_cost", "search_knowledge", "get_time",
             "convert_time"]
    script = "agents:\n  lead:\n    - toolCalls:\n" + "".join(f"        - {{name: {c}}}\n" for c in calls)
    out = tree(files(docs, script))
    # convert_time is on the server's list but the agent's own allow narrows it away
    assert out == [
        "s.yaml:10:18: script key 'lead': agent 'lead' has no tool 'convert_time' (did you mean "
        "'get_time'?); its tools: check_agent_status, command_agent, create_agent, delete_agent, "
        "get_time, interrupt_agent, list_agents, list_files, read_file, read_logs, report_cost, run_command, ...",
    ]


def test_a_server_without_an_allow_list_accepts_any_name_it_does_not_deny(tree):
    docs = [*agents("lead", lead="{model: m, tools: [{toolServer: open}]}"), *SERVERS]
    script = "agents:\n  lead:\n    - toolCalls: [{name: anything_at_all}, {name: drop_all}]\n"
    out = tree(files(docs, script))
    assert out == ["s.yaml:3:51: script key 'lead': agent 'lead' has no tool 'drop_all': a deny list of its "
                   "tool servers removes it"]


def test_turns_of_an_agent_that_does_not_use_this_script_are_not_checked(tree):
    # helper answers through another Model: the script's turns for it are never played.
    docs = [doc("Model", "real", "{model: openai/gpt-4o-mini}"), *agents("lead", "helper", helper="{model: real}")]
    script = ("agents:\n  lead:\n    - toolCalls: [{name: whatever}]\n"
              "  helper:\n    - toolCalls: [{name: whatever}]\n")
    assert tree(files(docs, script)) == [
        "s.yaml:3:26: script key 'lead': agent 'lead' has no tool 'whatever': it has no tools at all "
        "(no team it manages, no tools: entry, not a delegate member)",
    ]
