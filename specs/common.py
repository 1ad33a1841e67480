"""Value types shared by every kind: names, durations, quantities, references, budgets.

Pure data: no I/O. Values keep the text the user wrote (so dumps round-trip) and expose
the parsed figure as a property (``Duration.seconds``, ``Quantity.bytes``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

API_GROUP = "agentform.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS1123_RE = re.compile(DNS1123_LABEL)


class SpecModel(BaseModel):
    """Base of every manifest model: camelCase keys, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        # Build validators on first use: a run validates a few kinds, not all fifty models.
        defer_build=True,
    )


def _check_name(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"must be at most 63 characters (got {len(value)})")
    if not _DNS1123_RE.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": DNS1123_LABEL, "maxLength": 63}),
]

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"


class Duration(str):
    """A duration as written (``30s``, ``5m``, ``1h30m``, ``200ms``); ``.seconds`` is its value."""

    __slots__ = ()

    @property
    def seconds(self) -> float:
        return parse_duration(self)


def parse_duration(text: str) -> float:
    """Seconds in a duration string such as ``1h30m`` or ``250ms``; ValueError when malformed."""
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration: use forms like 30s, 5m, 1h30m, 200ms")
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


_DAYS_RE = re.compile(r"^(\d+(?:\.\d+)?)d(.*)$")


def parse_age(text: str) -> float:
    """Seconds in an age such as ``30d``, ``7d12h`` or ``24h`` (a duration, days allowed first:
    retention and ``--since`` speak in days); ValueError when malformed."""
    days = _DAYS_RE.match(text.strip()) if isinstance(text, str) else None
    if days is None:
        return parse_duration(text)
    rest = days.group(2)
    return float(days.group(1)) * 86400 + (parse_duration(rest) if rest else 0.0)


def _to_duration(value: Any) -> Any:
    if isinstance(value, str):
        parse_duration(value)
        return Duration(value.strip())
    raise ValueError("a duration must be a string such as 30s, 5m or 1h30m")


DurationStr = Annotated[
    str,
    BeforeValidator(_to_duration),
    AfterValidator(Duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]

_QUANTITY_RE = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"


class Quantity(str):
    """A memory quantity as written (``512Mi``, ``2Gi``); ``.bytes`` is its value."""

    __slots__ = ()

    @property
    def bytes(self) -> int:
        match = _QUANTITY_RE.match(self)
        assert match is not None  # checked at validation
        return int(float(match.group(1)) * _QUANTITY_FACTORS[match.group(2)])


def _to_quantity(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _QUANTITY_RE.match(value.strip()):
        return Quantity(value.strip())
    raise ValueError(f"'{value}' is not a memory quantity: use forms like 512Mi or 2Gi")


QuantityStr = Annotated[
    str,
    BeforeValidator(_to_quantity),
    AfterValidator(Quantity),
    WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN}),
]


class Ref(SpecModel):
    """A reference to another resource; written as a bare name or ``{name, namespace}``."""

    name: Name
    namespace: Name | None = None

    def resolve(self, default_namespace: str) -> tuple[str, str]:
        """The (namespace, name) this reference points at from ``default_namespace``."""
        return (self.namespace or default_namespace, self.name)


def _name_to_ref(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


RefField = Annotated[
    Ref,
    BeforeValidator(_name_to_ref),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": DNS1123_LABEL},
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": DNS1123_LABEL},
                        "namespace": {"type": "string", "pattern": DNS1123_LABEL},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class SecretRef(SpecModel):
    """``{secretRef: name}``: a value taken from a Secret at the moment of use."""

    secret_ref: RefField
    format: str | None = Field(default=None, description="e.g. 'Bearer {}'; {} is the value")


class Budget(SpecModel):
    """Limits for an agent invocation, a team call or a whole run (CONTRACT section 7)."""

    max_turns: int | None = Field(strict=True, default=None, ge=1)
    max_tokens: int | None = Field(strict=True, default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    timeout: DurationStr | None = None
    max_steps: int | None = Field(strict=True, default=None, ge=1, description=(
        "an Agent: tool calls per invocation; a Team: member calls (ask_*, transfer_to_*) per team "
        "call, nested teams' included; a Pipeline: stage runs, loop visits and forEach items"))
    max_handoffs: int | None = Field(strict=True, default=None, ge=0, le=10_000, description=(
        "a Team in handoff mode: handoffs per team call (default 10); read by no other holder"))


class Metadata(SpecModel):
    name: Name
    namespace: Name = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    """Raise a ValueError unless exactly one of ``fields`` is set on ``model``."""
    present = [f for f in fields if getattr(model, f) is not None]
    if len(present) != 1:
        names = ", ".join(to_camel(f) for f in fields)
        if not present:
            raise ValueError(f"{what} needs exactly one of: {names}")
        raise ValueError(
            f"{what} needs exactly one of: {names} (found {', '.join(to_camel(f) for f in present)})"
        )
