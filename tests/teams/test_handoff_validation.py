"""validate on handoff teams: unknown targets, unreachable members, a member with no way to
finish, team members, and handoff fields outside handoff mode; each at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

H = "apiVersion: agentform.dev/v1alpha1\n"
BASE = H + "kind: Model\nmetadata: {name: m}\nspec: {model: openai/gpt-4o-mini}\n" + "".join(
    f"---\n{H}kind: Agent\nmetadata: {{name: {n}}}\nspec: {{model: m}}\n" for n in ("triage", "billing", "refunds"))


def _team(body: str) -> str:
    return BASE + f"---\n{H}kind: Team\nmetadata: {{name: desk}}\nspec:\n  manager: triage\n" + body


@pytest.fixture
def diagnostics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)

    def validate(text: str) -> list[str]:
        from agentform.engine.validation import validate_path

        (tmp_path / "a.yaml").write_text(text)
        return [str(d) for d in validate_path(Path(".")).diagnostics]

    return validate


GOOD = """  mode: handoff
  handoffs: [billing]
  members:
    - agent: billing
      handoffs: [refunds, triage]
    - agent: refunds
      handoffs: [triage]
"""


def test_a_sound_handoff_team_validates(diagnostics):
    assert diagnostics(_team(GOOD)) == []
    assert diagnostics(_team(GOOD + "  finishers: [triage]\n")) == []


def test_unknown_and_self_targets(diagnostics):
    body = GOOD.replace("handoffs: [refunds, triage]", "handoffs: [refund, billing]")
    assert diagnostics(_team(body)) == [
        "a.yaml:30:18: 'billing' hands off to 'refund', which is not an agent of this team (did you mean "
        "'refunds'?) (the team's agents: triage, billing, refunds)",
        "a.yaml:30:26: 'billing' cannot hand off to itself",
        "a.yaml:31:14: member 'refunds' is unreachable: no agent reachable from the manager 'triage' hands "
        "off to it (add it to a handoffs list)"]


def test_an_unknown_target_of_the_manager(diagnostics):
    body = GOOD.replace("  handoffs: [billing]\n", "  handoffs: [billing, legal]\n")
    (d,) = diagnostics(_team(body))
    assert d.startswith("a.yaml:27:23: 'triage' hands off to 'legal', which is not an agent of this team")


def test_a_member_with_no_way_to_finish(diagnostics):
    body = GOOD.replace("handoffs: [refunds, triage]", "handoffs: [refunds]").replace(
        "handoffs: [triage]", "handoffs: [billing]") + "  finishers: [triage]\n"
    assert diagnostics(_team(body)) == [
        "a.yaml:29:14: 'billing' has no way to finish: it is not in finishers and no chain of its handoffs "
        "reaches an agent that is (add one to its handoffs, or it to finishers)",
        "a.yaml:31:14: 'refunds' has no way to finish: it is not in finishers and no chain of its handoffs "
        "reaches an agent that is (add one to its handoffs, or it to finishers)"]


def test_an_unknown_finisher(diagnostics):
    (d,) = diagnostics(_team(GOOD + "  finishers: [triag]\n"))
    assert d == "a.yaml:33:15: finisher 'triag' is not an agent of this team (did you mean 'triage'?)"


def test_a_team_as_a_member_of_a_handoff_team(diagnostics):
    text = _team(GOOD + "    - team: other\n") + f"---\n{H}kind: Team\nmetadata: {{name: other}}\nspec:\n" \
        "  manager: refunds\n  members: [{agent: billing}]\n"
    assert "a.yaml:33:13: member 'other' is a team: the members of a handoff team are agents" in \
        diagnostics(text)[0]


def test_handoff_fields_need_handoff_mode(diagnostics):
    (d,) = diagnostics(_team("  members:\n    - agent: billing\n      handoffs: [triage]\n"))
    assert "a member's 'handoffs' applies to a team with mode: handoff" in d
    (d,) = diagnostics(_team("  finishers: [triage]\n  members: [{agent: billing}]\n"))
    assert "'handoffs' and 'finishers' apply to a team with mode: handoff" in d
    (d,) = diagnostics(_team("  mode: handoff\n  members: [{agent: billing, mode: delegate, handoffs: [triage]}]\n"))
    assert "in mode: handoff every member hands off; a member takes no 'mode'" in d


def test_max_handoffs_is_bounded(diagnostics):
    (d,) = diagnostics(_team(GOOD + "  budget: {maxHandoffs: -1}\n"))
    assert d == "a.yaml:33:25: spec.budget.maxHandoffs: must be at least 0 (got -1)"
