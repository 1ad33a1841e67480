"""The Graph IR: what ``apply`` compiles a Team, Pipeline or Agent into, and what a run executes.

A Graph is self-contained: it carries every agent, model (with its scripted-model script
content), team, pipeline and tool server the target reaches, so a run depends only on the
revision it started on, never on the current files or the current store contents.
Keys inside a graph are ``namespace/name`` strings. Team edges (``ask_*``, ``transfer_to_*``,
``transfer_back``) are part of the graph, not MCP tools.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentform.specs.agent import AgentSpec
from agentform.specs.knowledge import KnowledgeBaseSpec
from agentform.specs.model import ModelSpec
from agentform.specs.pipeline import PipelineSpec
from agentform.specs.toolserver import ToolServerSpec
from agentform.specs.workspace import WorkspaceSpec

TRANSFER_BACK = "transfer_back"
MAX_TOOL_NAME = 64


def node_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def ask_tool(member: str) -> str:
    return f"ask_{member.replace('-', '_')}"


def transfer_tool(member: str) -> str:
    return f"transfer_to_{member.replace('-', '_')}"


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ModelNode(_Node):
    name: str
    namespace: str
    spec: ModelSpec
    script: dict[str, Any] | None = Field(default=None, description="parsed script, scripted only")


class AgentNode(_Node):
    name: str
    namespace: str
    model: str
    spec: AgentSpec


class MemberEdge(_Node):
    """A manager's edge to a member: the tool the manager calls and what answers it."""

    kind: Literal["Agent", "Team"]
    target: str
    name: str
    mode: Literal["orchestrate", "delegate", "handoff"]
    tool: str
    handoffs: list[str] | None = Field(default=None, description="handoff mode: whom it may hand to")


class TeamNode(_Node):
    name: str
    namespace: str
    manager: str
    members: list[MemberEdge]
    max_parallel: int
    budget: dict[str, Any] | None = None
    workspace: str | None = None
    mode: Literal["orchestrate", "delegate", "handoff"] = "orchestrate"
    handoffs: list[str] | None = Field(default=None, description="handoff mode: whom the manager may hand to")
    finishers: list[str] | None = Field(default=None, description="handoff mode: who may end the team (None: all)")
    vars: dict[str, Any] | None = None


class StageEdge(_Node):
    """A stage's resolved target: ``target`` is a graph key for agent/team/pipeline stages."""

    stage: str
    kind: Literal["agent", "team", "pipeline", "tool", "approval"]
    target: str | None = None


class PipelineNode(_Node):
    name: str
    namespace: str
    spec: PipelineSpec
    targets: dict[str, StageEdge]
    order: list[str] = Field(description="stage names in a topological order of needs")
    workspace: str | None = None


class Graph(_Node):
    """Everything one runnable target (Agent, Team or Pipeline) needs to run."""

    kind: Literal["Agent", "Team", "Pipeline"]
    root: str
    models: dict[str, ModelNode] = Field(default_factory=dict)
    agents: dict[str, AgentNode] = Field(default_factory=dict)
    teams: dict[str, TeamNode] = Field(default_factory=dict)
    pipelines: dict[str, PipelineNode] = Field(default_factory=dict)
    tool_servers: dict[str, ToolServerSpec] = Field(default_factory=dict)
    tool_server_dirs: dict[str, str] = Field(
        default_factory=dict,
        description="the absolute folder of each stdio tool server's manifest (pinned at apply): "
        "its working directory, against which a relative command[0] resolves",
    )
    tool_pins: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per tool server, the hash of each tool's definition as apply saw it "
        "(engine/toolpins.py); a run refuses a tool that differs; absent: pinned at first use",
    )
    workspaces: dict[str, WorkspaceSpec] = Field(default_factory=dict)
    workspace_seeds: dict[str, str] = Field(
        default_factory=dict,
        description="the absolute seed folder of each workspace that has one (pinned at apply): "
        "copied in at the workspace's first provision, by apply or by a run",
    )
    knowledge: dict[str, KnowledgeBaseSpec] = Field(default_factory=dict)
    knowledge_sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per knowledge base, what apply pinned of its sources (engine/knowledge/sources.py "
        "pin: folder, root, documents by sha256): a run indexes them when its machine lacks the index",
    )
    secrets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="where each reached Secret's value comes from (sealed|fromEnv|fromFile, "
        "fromFile absolute); never the value: resolve with agentform.engine.secrets.resolve_ref",
    )
