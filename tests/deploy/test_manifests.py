"""The deploy kit's compose file and Kubernetes manifests: Debian's docker-compose accepts the
compose file, and every container's arguments parse with agentform's own CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from .cli_args import parse

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE_ENV = {"POSTGRES_PASSWORD": "s3cret-pw", "AGENTFORM_GIT_URL": "https://git.example.com/team/agents.git"}


def _yaml_docs(path: Path) -> list[dict]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed: apt-get install docker-compose"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFORM_", "POSTGRES_"))}
    return subprocess.run([exe, "-f", str(DEPLOY / "docker-compose.yml"), "config"], cwd=DEPLOY,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_compose_config_accepts_the_file_and_every_command_parses():
    done = _compose_config(COMPOSE_ENV)
    assert done.returncode == 0, done.stderr
    config = YAML(typ="safe").load(done.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "serve", "worker", "watch"}
    parsed = {name: parse(svc["command"]) for name, svc in services.items() if name != "postgres"}
    assert parsed["serve"][0] == "serve" and parsed["serve"][1]["auth"] is True
    assert parsed["serve"][1]["host"] == "0.0.0.0" and parsed["serve"][1]["no_worker"] is True
    assert parsed["worker"][0] == "worker" and parsed["worker"][1]["metrics_port"] == 9464
    assert parsed["worker"][1]["metrics_host"] == "0.0.0.0"   # Prometheus scrapes from outside
    assert parsed["watch"][0] == "watch" and parsed["watch"][1]["git"] == COMPOSE_ENV["AGENTFORM_GIT_URL"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("serve", "worker", "watch"):
        env = services[name]["environment"]
        assert env["AGENTFORM_STORE"] == "postgresql://agentform:s3cret-pw@postgres:5432/agentform"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    # The worker's grace period outlasts its drain timeout: SIGKILL never cuts a drain short.
    grace = services["worker"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > parsed["worker"][1]["drain_timeout"]


def test_compose_refuses_to_run_without_a_database_password():
    done = _compose_config({"AGENTFORM_GIT_URL": "https://git.example.com/a.git"})
    assert done.returncode != 0 and "set POSTGRES_PASSWORD" in done.stderr


def _pod_specs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _yaml_docs(path):
            if doc["kind"] == "Deployment":
                out.append((f"{path.name}:{doc['metadata']['name']}", doc["spec"]["template"]))
            elif doc["kind"] == "CronJob":
                out.append((f"{path.name}:{doc['metadata']['name']}", doc["spec"]["jobTemplate"]["spec"]["template"]))
    return out


def test_every_kubernetes_container_args_parse_with_the_cli():
    seen = {}
    for where, template in _pod_specs():
        for container in template["spec"]["containers"]:
            assert "command" not in container, f"{where}: the image's entrypoint is agentform; give args"
            seen[where] = parse(container["args"])
    commands = sorted(name for name, _ in seen.values())
    assert commands == ["gc", "serve", "watch", "worker"], seen
    by_command = {name: params for name, params in seen.values()}
    assert by_command["gc"]["older_than"] == "30d"
    assert by_command["worker"]["metrics_port"] == 9464 and by_command["worker"]["metrics_host"] == "0.0.0.0"
    assert by_command["serve"]["auth"] is True   # it binds 0.0.0.0


@pytest.mark.parametrize("bad", [["worker", "--concurency", "4"], ["serve", "--port", "http"], ["gcc"]])
def test_the_dry_parse_refuses_what_the_cli_refuses(bad):
    with pytest.raises(Exception) as caught:
        parse(bad)
    assert type(caught.value).__name__ in ("NoSuchOption", "BadParameter", "UsageError")


def test_kubernetes_manifests_hang_together():
    docs = {path.name: _yaml_docs(path) for path in K8S.glob("*.yaml")}
    kustomization = docs.pop("kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(docs)   # every file listed, nothing missing
    secrets = {d["metadata"]["name"]: d for ds in docs.values() for d in ds if d["kind"] == "Secret"}
    maps = {d["metadata"]["name"]: d for ds in docs.values() for d in ds if d["kind"] == "ConfigMap"}
    assert set(secrets["agentform-engine-key"]["stringData"]) == {"engine.key", "engine.pub"}
    for where, template in _pod_specs():
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for v in volumes.values():
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, where
            if "configMap" in v:
                assert v["configMap"]["name"] in maps, where
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert all(m["name"] in volumes for m in mounts.values()), where
            # The engine's key pair sits where the engine looks for it: <home>/keys/.
            assert mounts["/var/lib/agentform/keys"]["name"] == "engine-key"
            assert mounts["/var/lib/agentform/keys"]["readOnly"] is True
            assert mounts["/var/lib/agentform/config.yaml"]["subPath"] == "config.yaml"
            store = next(e for e in container["env"] if e["name"] == "AGENTFORM_STORE")
            ref = store["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]]["stringData"]
            ports = {p["name"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, where
    for name, ds in docs.items():
        for d in ds:
            if d["kind"] == "Deployment":
                labels = d["spec"]["template"]["metadata"]["labels"]
                assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
            if d["kind"] == "Service":
                serve = next(x for x in docs["serve.yaml"] if x["kind"] == "Deployment")
                assert d["spec"]["selector"].items() <= serve["spec"]["template"]["metadata"]["labels"].items()
