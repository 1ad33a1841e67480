"""The template budget's settings: ``templates:`` in ``<home>/config.yaml``.

    templates:
      maxOutput: 1Mi          # characters of a rendered template (default 1Mi)
      maxIntermediate: 10Mi   # characters or bytes of any value built while rendering (10Mi)
      maxCpu: 1s              # CPU time of one render (1s)

Sizes are a number of characters or a quantity (``512Ki``, ``1Mi``); ``maxCpu`` is a
duration (``500ms``, ``2s``). A process names its home with ``use_home`` (cheap: the file
is read at the first render), or sets limits directly with ``configure``. This module
imports nothing heavy, so that the CLI can call ``use_home`` before every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Limits", "configure", "current", "home_config", "read", "use_home"]

_KEYS = {"maxOutput": "max_output", "maxIntermediate": "max_intermediate", "maxCpu": "max_cpu"}


@dataclass(frozen=True)
class Limits:
    """A render's budget (defaults: CONTRACT section 8)."""

    max_output: int = 1 << 20         # characters of the rendered text
    max_intermediate: int = 10 << 20  # characters (or bytes) of any value built on the way
    max_cpu: float = 1.0              # seconds of CPU time of the render

    @property
    def max_allocated(self) -> int:
        # Per-value caps alone would let a loop keep many large values alive at once.
        return 10 * self.max_intermediate


_state: dict[str, Any] = {"limits": None, "home": None}


def use_home(home: str | Path | None) -> None:
    """Take the budget from ``<home>/config.yaml`` (read at the next render); None: defaults."""
    _state["home"], _state["limits"] = (None if home is None else Path(home)), None


def configure(limits: Limits | None) -> None:
    """Set the budget of every render in this process (None: read the home's again)."""
    _state["limits"] = limits


def current() -> Limits:
    limits = _state["limits"]
    if limits is None:
        home = _state["home"]
        limits = _state["limits"] = read(home) if home is not None else Limits()
    return limits


def read(home: str | Path) -> Limits:
    """The ``templates:`` section of ``<home>/config.yaml`` (defaults where absent)."""
    path = Path(home) / "config.yaml"
    section = home_config(home).get("templates")
    if section is None:
        return Limits()
    from agentform.engine.errors import UsageError
    from agentform.specs.common import parse_duration

    if not isinstance(section, dict):
        raise UsageError(f"{path}: templates must be a mapping of {', '.join(_KEYS)}")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise UsageError(f"{path}: templates.{unknown[0]} is not a setting (known: {', '.join(_KEYS)})")
    values: dict[str, Any] = {}
    for key in ("maxOutput", "maxIntermediate"):
        if key in section:
            values[_KEYS[key]] = _size(section[key], f"{path}: templates.{key}")
    if "maxCpu" in section:
        try:
            values["max_cpu"] = parse_duration(str(section["maxCpu"]))
        except ValueError as exc:
            raise UsageError(f"{path}: templates.maxCpu: {exc}") from None
        if values["max_cpu"] <= 0:
            raise UsageError(f"{path}: templates.maxCpu must be more than 0")
    return Limits(**values)


def home_config(home: str | Path) -> dict[str, Any]:
    """The top level of ``<home>/config.yaml`` as data ({} when there is no such file); every
    engine setting (``templates``, ``retention``, ...) is read through this one parse."""
    path = Path(home) / "config.yaml"
    if not path.is_file():
        return {}
    from agentform.engine.errors import UsageError
    from agentform.engine.yamlsafe import parse_yaml

    parsed = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if parsed.fatal:
        raise UsageError(str(parsed.fatal[0]))
    data = parsed.documents[0].data if parsed.documents else None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the settings must be a mapping (templates:, retention:, ...)")
    return data


def _size(value: Any, where: str) -> int:
    from agentform.engine.errors import UsageError
    from agentform.specs.common import _QUANTITY_FACTORS, _QUANTITY_RE

    match = _QUANTITY_RE.match(str(value)) if not isinstance(value, bool) else None
    size = int(float(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]) if match else 0
    if size <= 0:
        raise UsageError(f"{where}: '{value}' is not a size: use a number of characters, or 512Ki, 1Mi, 10Mi")
    return size
