"""Where webhooks go: ``notify:`` in ``<home>/config.yaml`` and on a Pipeline's spec.

    notify:                                   # <home>/config.yaml: every run of this engine
      - url: https://hooks.example.com/agentform
        events: [approval.requested, run.failed]        # default: approval.requested and the ends
        secret: {fromEnv: AGENTFORM_WEBHOOK_SECRET}      # or {secretRef: {name: hook-key, namespace: ops}}
        maxAttempts: 8                                   # 1..20 (default 8)
        backoff: 10s                                     # first retry; doubles, at most 15m
        timeout: 10s                                     # one attempt, at most 60s

A Pipeline's ``spec.notify`` takes ``url``, ``events`` and ``secret: {secretRef: NAME}`` (a
Secret of the pipeline's namespace); the home's settings for attempts, backoff and timeout
apply to it. An ``Endpoint`` keeps where its signing key comes from, never the key: the key
is resolved at each attempt (engine/notify.py), so a rotated Secret takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_EVENTS = ("approval.requested", "run.completed", "run.failed", "run.cancelled")
EVENTS = frozenset({*DEFAULT_EVENTS, "run.waiting"})
MAX_ENDPOINTS = 20
_KEYS = ("url", "events", "secret", "maxAttempts", "backoff", "timeout")


@dataclass(frozen=True)
class Endpoint:
    """One webhook: where to POST, on which events, how to sign and how hard to try."""

    url: str
    events: frozenset[str] = frozenset(DEFAULT_EVENTS)
    secret: dict[str, Any] | None = None   # {"fromEnv": VAR} | {"secretRef": {"namespace", "name"}}
    max_attempts: int = 8
    backoff: float = 10.0
    timeout: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        """What the outbox records (retried by whichever process dispatches next)."""
        return {"url": self.url, "secret": self.secret, "maxAttempts": self.max_attempts,
                "backoff": self.backoff, "timeout": self.timeout}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        return cls(data["url"], secret=data.get("secret"), max_attempts=int(data["maxAttempts"]),
                   backoff=float(data["backoff"]), timeout=float(data["timeout"]))

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones."""
        return min(self.backoff * 2 ** max(attempts - 1, 0), 900.0)


@dataclass(frozen=True)
class NotifySettings:
    """The home's webhooks and the retry policy pipelines' webhooks use."""

    endpoints: tuple[Endpoint, ...] = ()
    policy: Endpoint = field(default_factory=lambda: Endpoint(""))

    def for_pipeline(self, hooks: list[Any], namespace: str) -> list[Endpoint]:
        """A compiled pipeline's ``spec.notify`` (specs.pipeline.Webhook) as endpoints."""
        out = []
        for hook in hooks:
            secret = None
            if hook.secret is not None:
                ns, name = hook.secret.secret_ref.resolve(namespace)
                secret = {"secretRef": {"namespace": ns, "name": name}}
            events = frozenset(hook.events) if hook.events else frozenset(DEFAULT_EVENTS)
            out.append(Endpoint(hook.url, events, secret, self.policy.max_attempts, self.policy.backoff,
                                self.policy.timeout))
        return out


def read(home: str | Path) -> NotifySettings:
    """``notify:`` of ``<home>/config.yaml``; UsageError naming the file and the entry when wrong."""
    from agentform.engine.template_settings import home_config

    section = home_config(home).get("notify")
    if section is None:
        return NotifySettings()
    where = f"{Path(home) / 'config.yaml'}: notify"
    if not isinstance(section, list):
        _fail(f"{where} must be a list of webhooks ({{url: https://..., secret: {{fromEnv: VAR}}}})")
    if len(section) > MAX_ENDPOINTS:
        _fail(f"{where} lists {len(section)} webhooks; at most {MAX_ENDPOINTS}")
    endpoints = tuple(_endpoint(entry, f"{where}[{i}]") for i, entry in enumerate(section))
    policy = endpoints[0] if endpoints else Endpoint("")
    return NotifySettings(endpoints, Endpoint("", max_attempts=policy.max_attempts, backoff=policy.backoff,
                                              timeout=policy.timeout))


def _endpoint(entry: Any, where: str) -> Endpoint:
    from agentform.specs.common import parse_duration

    if not isinstance(entry, dict):
        _fail(f"{where} must be a mapping with url (and events, secret, maxAttempts, backoff, timeout)")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        _fail(f"{where}.{unknown[0]} is not a setting (known: {', '.join(_KEYS)})")
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2048 \
            or any(c.isspace() for c in url):
        _fail(f"{where}.url must be an http:// or https:// URL (at most 2048 characters)")
    events = entry.get("events", list(DEFAULT_EVENTS))
    if not isinstance(events, list) or not events or not all(e in EVENTS for e in events):
        _fail(f"{where}.events must list some of: {', '.join(sorted(EVENTS))}")
    values: dict[str, Any] = {}
    attempts = entry.get("maxAttempts", 8)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        _fail(f"{where}.maxAttempts must be a whole number from 1 to 20")
    for key, low, high in (("backoff", 0.05, 3600.0), ("timeout", 0.1, 60.0)):
        if key in entry:
            try:
                values[key] = parse_duration(str(entry[key]))
            except ValueError as exc:
                _fail(f"{where}.{key}: {exc}")
            if not low <= values[key] <= high:
                _fail(f"{where}.{key} must be between {low:g}s and {high:g}s")
    return Endpoint(url, frozenset(events), _secret(entry.get("secret"), f"{where}.secret"), attempts, **values)


def _secret(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"fromEnv"} and isinstance(value["fromEnv"], str):
        return {"fromEnv": value["fromEnv"]}
    if isinstance(value, dict) and set(value) == {"secretRef"}:
        ref = value["secretRef"]
        ref = {"name": ref} if isinstance(ref, str) else ref
        if isinstance(ref, dict) and isinstance(ref.get("name"), str) and set(ref) <= {"name", "namespace"}:
            return {"secretRef": {"namespace": ref.get("namespace") or "default", "name": ref["name"]}}
    _fail(f"{where} must be {{fromEnv: VARIABLE}} or {{secretRef: {{name: SECRET, namespace: NS}}}}")
    return None


def _fail(message: str) -> None:
    from agentform.engine.errors import UsageError

    raise UsageError(message)
