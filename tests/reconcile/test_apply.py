"""plan / apply through the real CLI on both stores: create, update, no-op, prune, failures."""

from __future__ import annotations

import shutil

from agentform.engine.store import open_store
from agentform.specs import ResourceKey

from .helpers import AGENTS, demo_files, write

LEAD = ResourceKey("Agent", "default", "lead")


def revisions(store_url):
    store = open_store(store_url)
    try:
        return store.list_revisions()
    finally:
        store.close()


def resource(store_url, key):
    store = open_store(store_url)
    try:
        return store.get_resource(key)
    finally:
        store.close()


def test_plan_then_apply_creates_everything_and_reapply_is_a_noop(cli, store_url):
    plan = cli("plan")
    assert plan.code == 2, plan.err
    assert "+ agent.agentform.dev/default/lead create" in plan.out
    assert "Plan: 6 to create, 0 to update, 0 to delete." in plan.out
    first = cli("apply")
    assert first.code == 0, first.err
    assert "agent.agentform.dev/default/lead created" in first.out
    assert "pipeline.agentform.dev/default/newsroom created" in first.out
    (rev,) = revisions(store_url)
    assert rev.number == 1 and rev.app == "demo" and len(rev.changes) == 6
    assert rev.extra["prices"]["default/fast"]["source"] == "pricing"
    again = cli("apply")
    assert (again.code, again.out.strip()) == (0, "no changes")
    assert cli("plan").code == 0
    assert len(revisions(store_url)) == 1


def test_update_shows_a_field_diff_and_bumps_the_generation(cli, repo, store_url):
    assert cli("apply").code == 0
    (repo / "agents.yaml").write_text(AGENTS.replace("You lead.", "You lead firmly."))
    plan = cli("plan")
    assert plan.code == 2
    assert "~ agent.agentform.dev/default/lead update" in plan.out
    assert 'spec.instructions: "You lead." → "You lead firmly."' in plan.out
    assert "Plan: 0 to create, 1 to update, 0 to delete." in plan.out
    applied = cli("apply")
    assert applied.code == 0 and "agent.agentform.dev/default/lead configured" in applied.out
    assert "agent.agentform.dev/default/writer unchanged" in applied.out
    record = resource(store_url, LEAD)
    assert (record.generation, record.observed_generation, record.revision) == (2, 2, 2)
    assert revisions(store_url)[0].changes[0]["diff"] == [
        {"path": "spec.instructions", "old": "You lead.", "new": "You lead firmly."}]


def test_reformatting_and_comments_are_no_change(cli, repo):
    assert cli("apply").code == 0
    (repo / "team.yaml").write_text(
        "# the research team\n"
        "apiVersion: agentform.dev/v1alpha1\nkind: Team\n"
        "metadata:\n  name: research\n  namespace: default\n"
        "spec:\n  members: [{agent: researcher}, {mode: delegate, agent: writer}]\n"
        "  mode: orchestrate   # the default, written out\n  manager: {name: lead}\n"
    )
    plan = cli("plan")
    assert plan.code == 0, plan.out
    assert "No changes" in plan.out


def test_file_and_document_order_give_the_same_revision_hash(tmp_path, store_url, cli):
    from .helpers import Cli

    assert cli("apply").code == 0
    one = revisions(store_url)[0].content_hash
    files = demo_files()
    docs = files.pop("agents.yaml").split("---\n")
    files["a/agents-reversed.yaml"] = "---\n".join(reversed(docs))
    files["all-models.yaml"] = files.pop("models.yaml")  # another file, same folder
    other = write(tmp_path / "elsewhere" / "demo", files)
    second_store = f"sqlite:///{tmp_path / 'second.db'}"
    moved = Cli(home=tmp_path / "home2", store_url=second_store, cwd=other)
    assert moved("apply").code == 0
    assert revisions(second_store)[0].content_hash == one
    # and against the first store, the moved folder (same app name) is no change
    assert Cli(home=cli.home, store_url=store_url, cwd=other)("plan").code == 0


def test_a_script_edit_is_an_update(cli, repo):
    assert cli("apply").code == 0
    (repo / "scripts/demo.yaml").write_text('agents:\n  lead:\n    - content: "Another answer"\n')
    plan = cli("plan")
    assert plan.code == 2
    assert "~ model.agentform.dev/default/fast update" in plan.out
    assert "resolved.script.agents.lead[0].content" in plan.out


def test_orphans_without_prune_and_prune_deletes(cli, repo, store_url):
    assert cli("apply").code == 0
    (repo / "pipeline.yaml").unlink()
    plan = cli("plan")
    assert plan.code == 0  # orphans alone are no change
    assert "? pipeline.agentform.dev/default/newsroom orphaned" in plan.out
    kept = cli("apply")
    assert kept.code == 0 and "pipeline.agentform.dev/default/newsroom orphaned" in kept.out
    assert resource(store_url, ResourceKey("Pipeline", "default", "newsroom")) is not None
    assert cli("plan", "--prune").code == 2
    pruned = cli("apply", "--prune")
    assert pruned.code == 0, pruned.err
    assert "pipeline.agentform.dev/default/newsroom deleted" in pruned.out
    assert resource(store_url, ResourceKey("Pipeline", "default", "newsroom")) is None
    store = open_store(store_url)
    try:
        assert store.get_graph(ResourceKey("Pipeline", "default", "newsroom")) is None
        assert store.inventory("demo") and len(store.inventory("demo")) == 5
    finally:
        store.close()


def test_prune_that_would_delete_everything_is_refused(cli, repo, store_url):
    assert cli("apply").code == 0
    for item in list(repo.iterdir()):
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    (repo / "README.md").write_text("nothing here\n")
    refused = cli("apply", "--prune")
    assert refused.code == 1
    assert "would delete every resource of app 'demo'" in refused.err
    assert len(resource_keys(store_url)) == 6
    allowed = cli("apply", "--prune-all")
    assert allowed.code == 0, allowed.err
    assert resource_keys(store_url) == set()


def resource_keys(store_url):
    store = open_store(store_url)
    try:
        return {r.key for r in store.list_resources()}
    finally:
        store.close()


def test_prune_with_a_file_that_failed_to_load_deletes_nothing(cli, repo, store_url):
    assert cli("apply").code == 0
    (repo / "pipeline.yaml").write_text("apiVersion: agentform.dev/v1alpha1\nkind: Pipeline\n  bad: [\n")
    result = cli("apply", "--prune")
    assert result.code == 1
    assert "pipeline.yaml" in result.err
    assert "Traceback" not in result.err
    assert len(resource_keys(store_url)) == 6
    assert len(revisions(store_url)) == 1


def test_invalid_manifests_apply_nothing(cli, repo, store_url):
    (repo / "team.yaml").write_text(
        "apiVersion: agentform.dev/v1alpha1\nkind: Team\nmetadata: {name: research}\n"
        "spec:\n  manager: nobody\n  members: [{agent: researcher}]\n")
    result = cli("apply")
    assert result.code == 1
    assert "team.yaml:" in result.err
    assert resource_keys(store_url) == set() and revisions(store_url) == []
    assert cli("plan").code == 1


def test_a_missing_secret_source_fails_that_secret_only(cli, repo, store_url):
    write(repo, {"secrets.yaml": "apiVersion: agentform.dev/v1alpha1\nkind: Secret\n"
                                 "metadata: {name: token}\nspec: {fromEnv: AF_TEST_TOKEN}\n"})
    result = cli("apply")
    assert result.code == 1
    assert "secret.agentform.dev/default/token created" in result.out
    assert "Ready=False SourceNotFound: environment variable AF_TEST_TOKEN is not set" in result.err
    secret = resource(store_url, ResourceKey("Secret", "default", "token"))
    ready = next(c for c in secret.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "SourceNotFound")
    lead = resource(store_url, LEAD)
    assert next(c for c in lead.conditions if c.type == "Ready").status == "True"
    assert len(resource_keys(store_url)) == 7
    # the source appears: plan reports drift, apply repairs it
    plan = cli("plan", env={"AF_TEST_TOKEN": "s3cret-value"})
    assert plan.code == 2 and "~ secret.agentform.dev/default/token drifted" in plan.out
    fixed = cli("apply", env={"AF_TEST_TOKEN": "s3cret-value"})
    assert fixed.code == 0, fixed.err
    assert cli("plan", env={"AF_TEST_TOKEN": "s3cret-value"}).code == 0
    # and goes away again: drift the other way
    gone = cli("plan")
    assert gone.code == 2 and "drifted" in gone.out
    store = open_store(store_url)
    try:
        dump = repr(store.list_resources()) + repr(store.list_revisions())
    finally:
        store.close()
    assert "s3cret-value" not in dump


def test_pricing_unknown_is_marked_on_the_model(cli, repo, store_url):
    write(repo, {"priced.yaml": (
        "apiVersion: agentform.dev/v1alpha1\nkind: Model\nmetadata: {name: mystery}\n"
        "spec: {model: nowhere/unknown-model-x}\n---\n"
        "apiVersion: agentform.dev/v1alpha1\nkind: Agent\nmetadata: {name: thrifty}\n"
        "spec: {model: mystery, budget: {maxCostUsd: 0.5}}\n")})
    result = cli("apply")
    assert result.code == 0, result.err
    model = resource(store_url, ResourceKey("Model", "default", "mystery"))
    ready = next(c for c in model.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "PricingUnknown")
    assert revisions(store_url)[0].extra["prices"]["default/mystery"] is None


def test_a_resource_of_another_app_is_a_conflict(cli, repo, tmp_path, store_url):
    from .helpers import Cli

    assert cli("apply").code == 0
    other = write(tmp_path / "other", {"a.yaml": AGENTS.split("---\n")[0], **{
        "models.yaml": demo_files()["models.yaml"], "scripts/demo.yaml": demo_files()["scripts/demo.yaml"]}})
    result = Cli(home=cli.home, store_url=store_url, cwd=other)("apply")
    assert result.code == 1
    assert "belongs to app 'demo', not 'other'" in result.err
    assert len(revisions(store_url)) == 1


def test_saved_plan_applies_exactly_and_a_stale_one_is_refused(cli, repo, store_url):
    saved = cli("plan", "--out", "plan.json")
    assert saved.code == 2 and (repo / "plan.json").is_file()
    # editing the files after planning does not change what the saved plan applies
    (repo / "agents.yaml").write_text(AGENTS.replace("You lead.", "Edited after the plan."))
    applied = cli("apply", "plan.json")
    assert applied.code == 0, applied.err
    lead = resource(store_url, LEAD)
    assert lead.spec["spec"]["instructions"] == "You lead."
    stale = cli("apply", "plan.json")
    assert stale.code == 1
    assert "the store changed since this plan was made" in stale.err
    assert len(revisions(store_url)) == 1


def test_json_and_markdown_plans(cli, repo):
    assert cli("apply").code == 0
    (repo / "agents.yaml").write_text(AGENTS.replace("You write.", "You write | well."))
    data = cli("plan", "-o", "json")
    assert data.code == 2
    plan = data.json()
    assert plan["hasChanges"] is True and plan["baseRevision"] == 1
    assert plan["summary"]["update"] == 1
    (change,) = plan["changes"]
    assert change["resource"] == "agent.agentform.dev/default/writer"
    assert change["diff"] == [{"path": "spec.instructions", "old": "You write.", "new": "You write | well."}]
    md = cli("plan", "--format", "markdown")
    assert md.code == 2
    assert md.out.startswith("### agentform plan: `demo`")
    assert "| ✏️ | `agent.agentform.dev/default/writer` | update |" in md.out
    assert '+   spec.instructions: "You write | well."' in md.out
    gh = cli("plan", "--format", "github")
    assert "::notice file=agents.yaml,line=" in gh.out
    bad = cli("plan", "--format", "html")
    assert bad.code == 1 and "--format must be one of" in bad.err


def test_a_dependency_change_recompiles_the_graphs_that_reach_it(cli, repo, store_url):
    assert cli("apply").code == 0
    (repo / "models.yaml").write_text((repo / "models.yaml").read_text().replace(
        "inputPerMTok: 0.15", "inputPerMTok: 0.25"))
    result = cli("apply")
    assert result.code == 0 and "team.agentform.dev/default/research unchanged" in result.out
    store = open_store(store_url)
    try:
        for key in (ResourceKey("Team", "default", "research"), ResourceKey("Pipeline", "default", "newsroom"),
                    LEAD):
            old, new = store.get_graph(key, 1), store.get_graph(key, 2)
            assert old["models"]["default/fast"]["spec"]["pricing"]["inputPerMTok"] == 0.15
            assert new["models"]["default/fast"]["spec"]["pricing"]["inputPerMTok"] == 0.25
        assert store.get_revision(2).extra["prices"]["default/fast"]["inputPerMTok"] == 0.25
    finally:
        store.close()
