"""KnowledgeBase: documents indexed into a vector store and searched by agents."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import SecretRef, SpecModel

# Embedding models that run in the engine's process, offline (agentform[local-embeddings]).
LOCAL_PREFIX = "local/"
LOCAL_MODELS = ("local/minilm",)


class Source(SpecModel):
    path: str = Field(min_length=1, max_length=1000,
                      description="a file or glob (**, *, ?), relative to this file")


class Embedding(SpecModel):
    model: str = Field(default="local/minilm", min_length=1, max_length=200,
                       description="local/minilm (offline), or any litellm embedding model")
    base_url: str | None = Field(default=None, max_length=2000,
                                 description="an OpenAI-compatible server (litellm models only)")
    api_key: SecretRef | None = None

    @model_validator(mode="after")
    def _local_or_litellm(self) -> Embedding:
        if self.model.startswith(LOCAL_PREFIX):
            if self.model not in LOCAL_MODELS:
                raise ValueError(f"unknown local embedding model '{self.model}'; local models: "
                                 f"{', '.join(LOCAL_MODELS)} (or name a litellm embedding model)")
            if self.base_url is not None or self.api_key is not None:
                raise ValueError(f"'baseUrl' and 'apiKey' are for litellm models; {self.model} "
                                 "runs in the engine's process")
        return self


class QdrantServer(SpecModel):
    url: str = Field(min_length=1, max_length=2000)
    api_key: SecretRef | None = None


class VectorStore(SpecModel):
    qdrant: Literal["embedded"] | QdrantServer = "embedded"


class Chunking(SpecModel):
    size: int = Field(strict=True, default=800, ge=50, le=100_000, description="characters per chunk")
    overlap: int = Field(strict=True, default=100, ge=0, description="characters shared by neighbours")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> Chunking:
        if self.overlap >= self.size:
            raise ValueError("chunk overlap must be smaller than chunk size")
        return self


class KnowledgeBaseSpec(SpecModel):
    sources: list[Source] = Field(min_length=1, max_length=100)
    embedding: Embedding = Field(default_factory=Embedding)
    store: VectorStore = Field(default_factory=VectorStore)
    chunk: Chunking = Field(default_factory=Chunking)
