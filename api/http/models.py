"""The API's request and response bodies (pydantic): what the OpenAPI document describes.

Requests are bounded (``StartRun``: target, input, params, thread; ``Approval``) and refuse
unknown fields. Responses mirror the engine's ``to_dict()`` shapes field for field (the
engine's views are what ``-o json`` prints too), so the OpenAPI document says what comes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_INPUT_CHARS = 1_000_000
MAX_PARAMS = 100


class Run(BaseModel):
    id: str
    target: str
    status: Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled"]
    revision: int
    thread: str | None = None
    input: Any = None
    params: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    owner: str | None = None
    createdAt: float
    startedAt: float | None = None
    finishedAt: float | None = None
    tokensIn: int = 0
    tokensOut: int = 0
    costUsd: float = 0.0
    lastSeq: int = 0

    @classmethod
    def of(cls, record: Any) -> Run:
        return cls(id=record.id, target=record.target, status=record.status, revision=record.revision,
                   thread=record.thread, input=record.input, params=record.params or {}, output=record.output,
                   error=record.error, owner=record.owner, createdAt=record.created_at,
                   startedAt=record.started_at, finishedAt=record.finished_at, tokensIn=record.tokens_in,
                   tokensOut=record.tokens_out, costUsd=record.cost_usd, lastSeq=record.last_seq)


class RunSummary(BaseModel):
    """A run as listed (the engine's RunInfo): ``status`` as shown, e.g. ``failed (owner died)``."""

    id: str
    target: str
    status: str
    revision: int
    tokens: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_s: float
    thread: str | None = None
    created_at: float
    owner: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None


class RunPage(BaseModel):
    items: list[RunSummary]
    nextCursor: str | None = None


class Event(BaseModel):
    run: str
    seq: int
    ts: float
    type: str
    path: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[Event]
    nextAfter: int = Field(description="the seq to pass as ?after= for the next page")
    more: bool = Field(description="whether the stream held more events after this page when it was read")


class Condition(BaseModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class Resource(BaseModel):
    """An applied resource with its two axes (the engine's ResourceStatus)."""

    kind: str
    namespace: str
    name: str
    resource: str
    app: str
    sync: str
    health: str
    generation: int
    observedGeneration: int
    revision: int
    source: str
    labels: dict[str, str]
    conditions: list[Condition]
    spec: dict[str, Any]


class ResourceDetail(Resource):
    lastRevision: dict[str, Any] | None = None


class Revision(BaseModel):
    number: int
    app: str
    author: str
    createdAt: float
    contentHash: str
    gitCommit: str | None = None
    gitDirty: bool = False
    summary: dict[str, int]
    changes: list[dict[str, Any]]


class ResourceChange(BaseModel):
    action: str
    kind: str
    namespace: str
    name: str
    resource: str
    source: str = ""
    revisions: list[int]
    diff: list[dict[str, Any]]


class RevisionDiff(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    app: str | None = None
    from_: int = Field(alias="from")
    to: int
    revisions: list[int]
    changes: list[ResourceChange]


class Thread(BaseModel):
    thread: str
    runs: int
    firstAt: float
    lastAt: float
    lastRun: RunSummary | None = None


class PublicKey(BaseModel):
    keyId: str
    pem: str


class CostRow(BaseModel):
    key: str
    tokensIn: int
    tokensOut: int
    costUsd: float
    turns: int
    runs: int


class CostReport(BaseModel):
    by: str
    since: float | None
    rows: list[CostRow]
    total: CostRow


class StartRun(BaseModel):
    """``POST /api/v1/runs``: what ``agentform run`` takes."""

    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=3, max_length=300, pattern=r"^[A-Za-z]+/[a-z0-9-]+(/[a-z0-9-]+)?$",
                        description="kind/name or kind/namespace/name, e.g. team/research")
    input: str | dict[str, Any] | list[Any] | None = Field(default=None, description="the run's input")
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict,
                                                               description="pipeline parameters")
    thread: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")

    @field_validator("params")
    @classmethod
    def _few_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_PARAMS:
            raise ValueError(f"at most {MAX_PARAMS} params")
        for key in value:
            if not 0 < len(key) <= 100:
                raise ValueError("a param name has 1 to 100 characters")
        return value

    @field_validator("input")
    @classmethod
    def _bounded_input(cls, value: Any) -> Any:
        if value is not None:
            import json

            if len(json.dumps(value)) > MAX_INPUT_CHARS:
                raise ValueError(f"the input is longer than {MAX_INPUT_CHARS} characters of JSON")
        return value


class Approval(BaseModel):
    """``POST /api/v1/runs/{id}/approval``: approve (default) or reject the waiting approval."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"] = "approve"
    message: str | None = Field(default=None, max_length=4000)
    stage: str | None = Field(default=None, min_length=1, max_length=200,
                              description="which stage's approval, when several wait")


class Accepted(BaseModel):
    run: Run
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok"]
