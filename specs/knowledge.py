"""KnowledgeBase: documents indexed into a vector store and searched by agents."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .common import SecretRef, SpecModel


class Source(SpecModel):
    path: str = Field(min_length=1, description="a file or glob, relative to this file")


class Embedding(SpecModel):
    model: str = Field(default="local/minilm", min_length=1)


class QdrantServer(SpecModel):
    url: str
    api_key: SecretRef | None = None


class VectorStore(SpecModel):
    qdrant: Literal["embedded"] | QdrantServer = "embedded"


class Chunking(SpecModel):
    size: int = Field(strict=True, default=800, ge=50, le=100_000)
    overlap: int = Field(strict=True, default=100, ge=0)

    @model_validator(mode="after")
    def _overlap_smaller(self) -> Chunking:
        if self.overlap >= self.size:
            raise ValueError("chunk overlap must be smaller than chunk size")
        return self


class KnowledgeBaseSpec(SpecModel):
    sources: list[Source] = Field(min_length=1)
    embedding: Embedding = Field(default_factory=Embedding)
    store: VectorStore = Field(default_factory=VectorStore)
    chunk: Chunking = Field(default_factory=Chunking)
