"""The envelope (apiVersion/kind/metadata/spec) and the registry of kinds."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .agent import AgentSpec
from .common import API_VERSION, Metadata
from .knowledge import KnowledgeBaseSpec
from .model import ModelSpec
from .pipeline import PipelineSpec
from .secret import SecretSpec
from .team import TeamSpec
from .toolserver import ToolServerSpec
from .workspace import WorkspaceSpec


class Resource(BaseModel):
    """A manifest document; one subclass per kind."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)

    api_version: Literal["agentform.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: str
    metadata: Metadata

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.metadata.namespace, self.metadata.name)


class ResourceKey(tuple):
    """(kind, namespace, name): the identity of a resource; prints as ``Kind/ns/name``."""

    __slots__ = ()

    def __new__(cls, kind: str, namespace: str, name: str) -> ResourceKey:
        return super().__new__(cls, (kind, namespace, name))

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def namespace(self) -> str:
        return self[1]

    @property
    def name(self) -> str:
        return self[2]

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class Model(Resource):
    kind: Literal["Model"]
    spec: ModelSpec


class Secret(Resource):
    kind: Literal["Secret"]
    spec: SecretSpec


class ToolServer(Resource):
    kind: Literal["ToolServer"]
    spec: ToolServerSpec


class Workspace(Resource):
    kind: Literal["Workspace"]
    spec: WorkspaceSpec


class KnowledgeBase(Resource):
    kind: Literal["KnowledgeBase"]
    spec: KnowledgeBaseSpec


class Agent(Resource):
    kind: Literal["Agent"]
    spec: AgentSpec


class Team(Resource):
    kind: Literal["Team"]
    spec: TeamSpec


class Pipeline(Resource):
    kind: Literal["Pipeline"]
    spec: PipelineSpec


# Dependency order: what a kind may reference comes before it (apply walks this order).
KINDS: dict[str, type[Resource]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (Secret, Model, ToolServer, Workspace, KnowledgeBase, Agent, Team, Pipeline)
}

AnyResource = Annotated[
    Union[Model, Secret, ToolServer, Workspace, KnowledgeBase, Agent, Team, Pipeline],
    Field(discriminator="kind"),
]


def kind_from_word(word: str) -> str | None:
    """The kind a user meant by ``agent``, ``agents``, ``Agent`` or ``KnowledgeBases``; else None."""
    lowered = word.lower()
    for kind in KINDS:
        k = kind.lower()
        if lowered in (k, k + "s", k + "es"):
            return kind
    return None


__all__ = ["API_VERSION", "KINDS", "AnyResource", "Resource", "ResourceKey", "kind_from_word"] + [
    *KINDS
]
