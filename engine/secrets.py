"""Secrets: where a value comes from, checked at apply and resolved at the moment of use.

A Secret's value is never stored. ``apply`` only checks its source (``check_source``: the
value is there and at least ``MIN_SECRET_LEN`` characters long); runs resolve it when they
need it (``resolve``/``resolve_ref``). Every value read, at apply or at use, is registered
with the process-wide redactor (``engine/redaction.py``) the moment it is read, so nothing
this process writes afterwards can carry it.

Sealed values (``afs2:<key-id>:``, and the older ``afs1:``) are HPKE ciphertexts for one of
the engine's key pairs, with the Secret's ``namespace/name`` as HPKE ``info``: moved to another
Secret, a sealed value does not decrypt (engine/sealing.py; the ``secret`` command's work is in
engine/secret_keys.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentform.engine import sealing
from agentform.engine.errors import RunError
from agentform.engine.redaction import MIN_SECRET_LEN, redact_text, register


@dataclass(frozen=True)
class SecretSource:
    """One Secret's source as recorded at apply (``from_file`` already absolute)."""

    namespace: str
    name: str
    sealed: str | None = None
    from_env: str | None = None
    from_file: str | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> SecretSource:
        """From a stored or desired Secret document (its ``resolved.fromFile`` wins)."""
        spec = document.get("spec", {})
        meta = document.get("metadata", {})
        resolved = document.get("resolved", {})
        return cls(meta.get("namespace", "default"), meta["name"], spec.get("sealed"),
                   spec.get("fromEnv"), resolved.get("fromFile") or spec.get("fromFile"))

    def to_dict(self) -> dict[str, Any]:
        data = {"sealed": self.sealed, "fromEnv": self.from_env, "fromFile": self.from_file}
        return {k: v for k, v in data.items() if v is not None}

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class SourceCheck:
    ok: bool
    reason: str
    message: str


def check_source(source: SecretSource, *, home: Path) -> SourceCheck:
    """Is the value there, and long enough to redact? Never returns or records the value itself."""
    if source.from_env is not None:
        if source.from_env in os.environ:
            return _length_check(source, os.environ[source.from_env]) or SourceCheck(
                True, "SourceFound", f"environment variable {source.from_env} is set")
        return SourceCheck(False, "SourceNotFound", f"environment variable {source.from_env} is not set")
    if source.from_file is not None:
        path = Path(source.from_file)
        if path.is_file() and os.access(path, os.R_OK):
            try:
                value = _read_file(path)
            except (OSError, UnicodeDecodeError) as exc:
                return SourceCheck(False, "SourceNotFound", f"file {path} cannot be read: {exc}")
            return _length_check(source, value) or SourceCheck(True, "SourceFound", f"file {path} is readable")
        return SourceCheck(False, "SourceNotFound", f"file {path} does not exist or is not readable")
    missing = _sealed_problem(source, home)
    if missing is not None:
        return missing
    try:
        value = unseal(source.sealed, home=home, namespace=source.namespace, name=source.name)
    except sealing.KeyNotFound as exc:
        return SourceCheck(False, "KeyNotFound", str(exc))
    except RunError as exc:
        return SourceCheck(False, "DecryptFailed", str(exc))
    return _length_check(source, value) or SourceCheck(True, "SourceFound",
                                                       "sealed value decrypts with the engine key")


def probe_source(source: SecretSource, *, home: Path) -> SourceCheck:
    """Is the source there? Reads, decrypts and registers nothing: what ``plan`` may know
    (CONTRACT section 8: plan never resolves a secret). The value is checked at apply."""
    later = "its value is checked at apply"
    if source.from_env is not None:
        if source.from_env in os.environ:
            return SourceCheck(True, "SourcePresent", f"environment variable {source.from_env} is set ({later})")
        return SourceCheck(False, "SourceNotFound", f"environment variable {source.from_env} is not set")
    if source.from_file is not None:
        path = Path(source.from_file)
        if path.is_file() and os.access(path, os.R_OK):
            return SourceCheck(True, "SourcePresent", f"file {path} is there ({later})")
        return SourceCheck(False, "SourceNotFound", f"file {path} does not exist or is not readable")
    missing = _sealed_problem(source, home)
    if missing is not None:
        return missing
    return SourceCheck(True, "SourcePresent", f"sealed value is well-formed and the engine key is there ({later})")


def _sealed_problem(source: SecretSource, home: Path) -> SourceCheck | None:
    """SealedMalformed or KeyNotFound, judged without reading a private key (plan may call it)."""
    assert source.sealed is not None
    try:
        parsed = sealing.parse(source.sealed)
    except ValueError as exc:
        return SourceCheck(False, "SealedMalformed", str(exc))
    if not sealing.has_key(home, parsed.key_id):
        return SourceCheck(False, "KeyNotFound",
                           f"secret {source.label}: {sealing.missing_key_message(home, parsed.key_id)}")
    return None


def _length_check(source: SecretSource, value: str | None) -> SourceCheck | None:
    """ValueTooShort for a value that cannot be redacted safely; None (and the value registered,
    so that whatever this process writes next is redacted) otherwise."""
    if value is None:
        return None
    if len(value) < MIN_SECRET_LEN:
        return SourceCheck(False, "ValueTooShort", _too_short(source, len(value)))
    register(value)
    return None


def _too_short(source: SecretSource, length: int) -> str:
    return (f"secret {source.label}: its value has {length} characters; at least {MIN_SECRET_LEN} are "
            "needed to redact it safely from everything the engine writes: use a longer value")


def resolve(source: SecretSource, *, home: Path) -> str:
    """The secret's value now, registered with the redactor before anyone can write it; RunError
    (never containing the value) when unavailable or too short to redact."""
    value = _read(source, home=home)
    if len(value) < MIN_SECRET_LEN:
        raise RunError(_too_short(source, len(value)) + " (reason ValueTooShort)")
    register(value)
    return value


def _read(source: SecretSource, *, home: Path) -> str:
    if source.from_env is not None:
        value = os.environ.get(source.from_env)
        if value is None:
            raise RunError(f"secret {source.label}: environment variable {source.from_env} is not set")
        return value
    if source.from_file is not None:
        try:
            return _read_file(Path(source.from_file))
        except OSError as exc:
            raise RunError(f"secret {source.label}: cannot read {source.from_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise RunError(f"secret {source.label}: {source.from_file} is not UTF-8 text") from None
    assert source.sealed is not None
    return unseal(source.sealed, home=home, namespace=source.namespace, name=source.name)


def _read_file(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def resolve_ref(ref: Any, *, namespace: str, secrets: Mapping[str, Mapping[str, Any]], home: Path) -> str:
    """A ``SecretRef`` (``{secretRef, format}``) resolved through a graph's ``secrets`` map."""
    ns, name = ref.secret_ref.resolve(namespace)
    entry = secrets.get(f"{ns}/{name}")
    if entry is None:
        raise RunError(f"secret {ns}/{name} is not part of this revision")
    value = resolve(SecretSource(ns, name, entry.get("sealed"), entry.get("fromEnv"),
                                 entry.get("fromFile")), home=home)
    return ref.format.replace("{}", value) if ref.format else value


def redact(text: str, values: Iterable[str] = (), mask: str = "***") -> str:
    """Compatibility wrapper over the process-wide redactor (``engine.redaction.redact_text``).

    ``values`` are registered (they were resolved through ``resolve`` and are already known);
    ``mask`` is ignored: every writer masks the same way.
    """
    for value in values:
        register(value)
    return redact_text(text)


# -- sealing (engine/sealing.py; these names are kept for existing callers) ----------------------


def private_key_path(home: Path) -> Path:
    return sealing.private_key_path(home)


def generate_keys(home: Path) -> Path:
    """A new key pair under ``<home>/keys/`` (``agentform secret keygen``); the public key path."""
    from agentform.engine.secret_keys import keygen

    return keygen(home).public_key


def seal(value: str, public_key_pem: bytes, *, namespace: str, name: str) -> str:
    """``afs2:<key-id>:...``: ``value`` encrypted for the PEM public key, bound to ``namespace/name``."""
    key = sealing.load_public_key(public_key_pem, source="public key")
    return sealing.seal(value, key, namespace=namespace, name=name)


def unseal(sealed: str, *, home: Path, namespace: str, name: str) -> str:
    """Decrypt a sealed value (afs1 or afs2) with the engine's keys; RunError when it does not."""
    return sealing.unseal(sealed, home=home, namespace=namespace, name=name)
