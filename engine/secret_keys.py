"""What ``agentform secret`` does: make and rotate the engine's key pairs, seal a value, and
re-seal a folder's Secret manifests in place (``Engine.secret_*`` call these).

Nothing here opens the store, and no value is returned or printed: ``seal`` registers the value
with the redactor the moment it has it, ``rotate`` each value it decrypts. ``rotate`` decrypts
every sealed value of the folder before it changes anything, so a value it cannot open stops it
with the keys and files as they were; the retired pair is written under its id before the
current pair is replaced, so every moment of a rotation leaves a key ring that opens every value.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine import sealing
from agentform.engine.errors import NotFound, RunError, UsageError
from agentform.engine.redaction import MIN_SECRET_LEN, register

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    private_key: Path
    public_key: Path
    retired: str | None = None   # rotate: the id of the pair it kept


@dataclass(frozen=True)
class SealedSecret:
    namespace: str
    name: str
    key_id: str
    sealed: str

    def manifest(self) -> str:
        """The Secret manifest to commit (the value is only in ``sealed``, encrypted)."""
        return ("apiVersion: agentform.dev/v1alpha1\nkind: Secret\nmetadata:\n"
                f"  name: {self.name}\n  namespace: {self.namespace}\nspec:\n"
                f"  # sealed for engine key {self.key_id}; decrypts only as {self.namespace}/{self.name}\n"
                f"  sealed: \"{self.sealed}\"\n")


@dataclass
class RotateResult:
    key: KeyInfo
    resealed: list[tuple[str, str]] = field(default_factory=list)   # (file, namespace/name)


def keygen(home: Path) -> KeyInfo:
    """A new current key pair in ``<home>/keys/``; refuses to replace one."""
    _refuse_env("keygen")
    current = sealing.private_key_path(home)
    if current.exists():
        key = sealing.current_public_key(home)
        raise UsageError(f"{current} already exists (key {sealing.key_id_of(key)}): keygen never replaces a key; "
                         "'agentform secret rotate FOLDER' makes a new pair and re-seals the folder's Secrets")
    return _install(home, _new_key(), retire=None)


def public_key(home: Path) -> tuple[str, str]:
    """(key id, PEM) of the key values are sealed for."""
    key = sealing.current_public_key(home)
    return sealing.key_id_of(key), sealing.public_pem(key)


def seal(value: str, *, namespace: str, name: str, home: Path, public_key_pem: bytes | None = None,
         source: str = "--public-key") -> SealedSecret:
    """``value`` sealed for the engine's current key, or for ``public_key_pem`` (no home needed)."""
    for what, label in (("--namespace", namespace), ("--name", name)):
        if not _LABEL.match(label):
            raise UsageError(f"{what} '{label}' is not a DNS-1123 label: lower-case letters, digits and '-', "
                             "starting and ending with a letter or digit, at most 63 characters")
    if len(value) < MIN_SECRET_LEN:
        raise UsageError(f"the value has {len(value)} characters; at least {MIN_SECRET_LEN} are needed to redact "
                         "it safely from everything the engine writes (ValueTooShort): use a longer value")
    register(value)
    if public_key_pem is not None:
        key = sealing.load_public_key(public_key_pem, source=source)
    else:
        key = sealing.current_public_key(home)
    return SealedSecret(namespace, name, sealing.key_id_of(key),
                        sealing.seal(value, key, namespace=namespace, name=name))


def rotate(home: Path, folder: Path | None = None) -> RotateResult:
    """A new current pair (the old one kept by id); the sealed Secrets under ``folder``, if
    given, re-sealed for it in place with their files' comments and formatting kept."""
    _refuse_env("rotate")
    if not sealing.private_key_path(home).is_file():
        raise NotFound(f"no engine key in {sealing.key_dir(home)}/ to rotate: make one with "
                       f"'agentform --home {home} secret keygen'")
    found = _sealed_secrets(home, folder) if folder is not None else []
    old = sealing.current_public_key(home)
    key = _new_key()
    info = _install(home, key, retire=sealing.key_id_of(old))
    result = RotateResult(info)
    by_file: dict[str, list[tuple[Any, str]]] = {}
    for manifest, value in found:
        meta = manifest.resource.metadata
        new = sealing.seal(value, key.public_key(), namespace=meta.namespace, name=meta.name)
        by_file.setdefault(os.path.realpath(manifest.file), []).append((manifest, new))
        result.resealed.append((manifest.display, f"{meta.namespace}/{meta.name}"))
    for real, changes in by_file.items():
        _rewrite(Path(real), changes)
    return result


def _refuse_env(command: str) -> None:
    if sealing.env_keys_set():
        raise UsageError(f"{sealing.KEY_FILE_ENV} or {sealing.KEY_ENV} is set: this process reads its keys from "
                         f"there, so a pair made in the home would not be used; run 'agentform secret {command}' "
                         "with them unset, then update the key file from <home>/keys/")


def _sealed_secrets(home: Path, folder: Path) -> list[tuple[Any, str]]:
    """(manifest, value) of every sealed Secret under ``folder``, all decrypted first."""
    from agentform.engine.loader import load_manifests

    manifests = load_manifests(folder)
    manifests.raise_for_errors()
    found, failed = [], []
    for manifest in manifests.of_kind("Secret"):
        sealed = manifest.resource.spec.sealed
        if sealed is None:
            continue
        meta = manifest.resource.metadata
        try:
            value = sealing.unseal(sealed, home=home, namespace=meta.namespace, name=meta.name)
        except RunError as exc:
            failed.append(f"{manifest.locate('spec', 'sealed')}: {exc}")
            continue
        if len(value) >= MIN_SECRET_LEN:
            register(value)
        found.append((manifest, value))
    if failed:
        raise UsageError("rotate changed nothing: these sealed values do not decrypt with this engine's keys:\n  "
                         + "\n  ".join(failed))
    return found


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.generate()


def _install(home: Path, key: Any, retire: str | None) -> KeyInfo:
    from cryptography.hazmat.primitives import serialization

    folder = sealing.key_dir(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = sealing.public_pem(key.public_key()).encode()
    current, current_pub = sealing.private_key_path(home), sealing.public_key_path(home)
    if retire is not None:
        _write(folder / f"{retire}.key", current.read_bytes(), 0o600)
        if current_pub.is_file():
            _write(folder / f"{retire}.pub", current_pub.read_bytes(), 0o644)
    # The private key first: between the two a crash leaves the old public key current, whose
    # private half is kept under its id, so what is sealed meanwhile still decrypts.
    _write(current, private, 0o600, exclusive=retire is None)
    _write(current_pub, public, 0o644)
    return KeyInfo(sealing.key_id_of(key.public_key()), current, current_pub, retire)


def _write(path: Path, data: bytes, mode: int, exclusive: bool = False) -> None:
    """Write ``path`` whole or not at all (a temp file renamed); ``exclusive`` never replaces one."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise UsageError(f"{path} already exists: keygen never replaces a key") from None
        else:
            os.replace(temp, path)
            temp = ""
    finally:
        if temp:
            os.unlink(temp)


def _rewrite(path: Path, changes: list[tuple[Any, str]]) -> None:
    """Each old sealed value replaced by its new one where the parser saw it, every other byte
    kept; a value the file spells differently (folded over lines, escaped) goes through a
    ruamel.yaml round trip of that file instead."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    spliced, leftover = text, []
    for manifest, new in sorted(changes, key=lambda c: _offset(lines, c[0]), reverse=True):
        old = manifest.resource.spec.sealed
        start = _offset(lines, manifest)
        at = spliced.find(old, start, start + len(old) + 2)   # after an opening quote, if any
        if at < 0:
            leftover.append((manifest, new))
            continue
        spliced = spliced[:at] + new + spliced[at + len(old):]
    if leftover:
        spliced = _round_trip(spliced, leftover)
    _write(path, spliced.encode("utf-8"), path.stat().st_mode & 0o777)


def _offset(lines: list[str], manifest: Any) -> int:
    line, col = manifest.doc.locs[("spec", "sealed")][2:]
    return sum(len(x) + 1 for x in lines[:line - 1]) + col - 1


def _round_trip(text: str, changes: list[tuple[Any, str]]) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    docs = list(yaml.load_all(text))
    for manifest, new in changes:
        docs[manifest.doc_index]["spec"]["sealed"] = new
    out = io.StringIO()
    yaml.dump_all(docs, out)
    return out.getvalue()
