"""Manifests as typed, pure data: one pydantic model per kind (CONTRACT section 1)."""

from .common import (
    API_GROUP,
    API_VERSION,
    Budget,
    Duration,
    Quantity,
    Ref,
    SecretRef,
    parse_duration,
)
from .kinds import (
    KINDS,
    Agent,
    AnyResource,
    KnowledgeBase,
    Model,
    Pipeline,
    Resource,
    ResourceKey,
    Secret,
    Team,
    ToolServer,
    Workspace,
    kind_from_word,
)
from .script import Script

__all__ = [
    "API_GROUP", "API_VERSION", "KINDS", "Agent", "AnyResource", "Budget", "Duration",
    "KnowledgeBase", "Model", "Pipeline", "Quantity", "Ref", "Resource", "ResourceKey",
    "Script", "Secret", "SecretRef", "Team", "ToolServer", "Workspace", "kind_from_word",
    "parse_duration",
]
