"""Sealed secret values and the engine's key pairs (CONTRACT section 8, "Secrets").

    afs1:<base64url>             HPKE (X25519, HKDF-SHA256, ChaCha20-Poly1305), ``info`` =
                                 ``agentform-secret:<namespace>/<name>``; names no key, so every
                                 key the engine has is tried. Decrypts forever; no longer written.
    afs2:<key-id>:<base64url>    the same suite and ``info``; ``key-id`` is the first 16 hex digits
                                 of SHA-256 of the raw public key, so a value names the pair that
                                 opens it and a public key file alone is enough to seal.

Key pairs live under ``<home>/keys/``: ``engine.key``/``engine.pub`` is the current pair (what
``seal`` seals for), ``<key-id>.key``/``<key-id>.pub`` the pairs ``rotate`` retired, kept so
pinned revisions and resumed runs still decrypt. A process with no home of its own (a worker of
a ``--store`` deployment) reads private keys from ``AGENTFORM_KEY_FILE`` (a PEM file of one or
more keys, the first is current) or ``AGENTFORM_KEY`` (the PEM text itself); both add to the
home's keys. Nothing is cached: a rotation is seen by the next decryption of a running worker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentform.engine.errors import NotFound, RunError, UsageError

KEY_DIR = "keys"
PRIVATE_KEY = "engine.key"
PUBLIC_KEY = "engine.pub"
KEY_FILE_ENV = "AGENTFORM_KEY_FILE"
KEY_ENV = "AGENTFORM_KEY"
V1, V2 = "afs1:", "afs2:"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_PEM_PRIVATE = re.compile(rb"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", re.S)
_ENC_LEN = 32   # X25519 encapsulated key
_TAG_LEN = 16   # ChaCha20-Poly1305 tag


@dataclass(frozen=True)
class Sealed:
    """A parsed sealed value: its format's key id (None for afs1) and the HPKE ciphertext."""

    key_id: str | None
    blob: bytes


def key_dir(home: Path) -> Path:
    return Path(home) / KEY_DIR


def private_key_path(home: Path) -> Path:
    return key_dir(home) / PRIVATE_KEY


def public_key_path(home: Path) -> Path:
    return key_dir(home) / PUBLIC_KEY


def env_keys_set() -> bool:
    return bool(os.environ.get(KEY_FILE_ENV) or os.environ.get(KEY_ENV))


# -- parsing -------------------------------------------------------------------------------------


def parse(sealed: str) -> Sealed:
    """The key id and ciphertext of ``sealed``; ValueError saying what is wrong with it."""
    if sealed.startswith(V2):
        key_id, sep, body = sealed[len(V2):].partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ValueError("an afs2 value is 'afs2:<key-id>:<base64url>', the key id 16 hex digits")
    elif sealed.startswith(V1):
        key_id, body = None, sealed[len(V1):]
    else:
        raise ValueError(f"a sealed value starts with '{V2}' (or '{V1}')")
    body = body.strip()
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the sealed value is not valid base64url") from None
    if len(blob) <= _ENC_LEN + _TAG_LEN:
        raise ValueError("the sealed value is too short to be a ciphertext")
    return Sealed(key_id, blob)


def key_id_of(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes, *, source: str) -> Any:
    """An X25519 public key from PEM; UsageError naming ``source`` when it is anything else."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{source}: not a PEM public key ({exc}); use the output of "
                         "'agentform secret public-key'") from None
    if not isinstance(key, X25519PublicKey):
        raise UsageError(f"{source}: not an X25519 public key; use the output of 'agentform secret public-key'")
    return key


# -- the key ring --------------------------------------------------------------------------------


def _load_private(pem: bytes, source: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise RunError(f"cannot load the engine key {source}: {exc}") from None
    if not isinstance(key, X25519PrivateKey):
        raise RunError(f"the engine key {source} is not an X25519 private key")
    return key


def _env_keys() -> list[tuple[str, Any]]:
    """(source, key) of AGENTFORM_KEY_FILE's keys, then AGENTFORM_KEY's, in order."""
    found: list[tuple[str, Any]] = []
    file = os.environ.get(KEY_FILE_ENV)
    if file:
        try:
            text = Path(file).read_bytes()
        except OSError as exc:
            raise RunError(f"{KEY_FILE_ENV}={file}: cannot read it: {exc.strerror}") from None
        blocks = _PEM_PRIVATE.findall(text)
        if not blocks:
            raise RunError(f"{KEY_FILE_ENV}={file}: holds no PEM private key")
        found += [(f"{file} (key {n + 1})", _load_private(b, file)) for n, b in enumerate(blocks)]
    text = os.environ.get(KEY_ENV)
    if text:
        found += [(KEY_ENV, _load_private(b, KEY_ENV)) for b in _PEM_PRIVATE.findall(text.encode())]
    return found


def _home_key(home: Path, key_id: str) -> Any | None:
    """The home's private key with that id: a retired pair by its file name, else the current
    pair when its id is that one."""
    retired = key_dir(home) / f"{key_id}.key"
    if retired.is_file():
        return _load_private(retired.read_bytes(), str(retired))
    current = private_key_path(home)
    if current.is_file():
        key = _load_private(current.read_bytes(), str(current))
        if key_id_of(key.public_key()) == key_id:
            return key
    return None


def _all_keys(home: Path) -> list[Any]:
    """Every private key this process can use, the current ones first (for afs1 values)."""
    keys = [key for _, key in _env_keys()]
    folder = key_dir(home)
    current = private_key_path(home)
    if current.is_file():
        keys.append(_load_private(current.read_bytes(), str(current)))
    if folder.is_dir():
        keys += [_load_private(p.read_bytes(), str(p)) for p in sorted(folder.glob("*.key"))
                 if _KEY_ID.match(p.stem)]
    return keys


def known_key_ids(home: Path) -> list[str]:
    """The ids of the home's pairs, from their public halves (reads no private key)."""
    ids = set()
    folder = key_dir(home)
    if public_key_path(home).is_file():
        ids.add(key_id_of(load_public_key(public_key_path(home).read_bytes(), source=str(public_key_path(home)))))
    if folder.is_dir():
        ids |= {p.stem for p in folder.glob("*.key") if _KEY_ID.match(p.stem)}
    return sorted(ids)


def has_key(home: Path, key_id: str | None) -> bool:
    """Whether a value sealed for ``key_id`` (None: afs1, any key) could decrypt here, judged
    without reading a private key: what ``plan`` may know."""
    if env_keys_set():
        return True   # a key file's ids are only known by reading it: apply checks
    if key_id is None:
        return private_key_path(home).is_file() or bool(known_key_ids(home))
    if private_key_path(home).is_file() and not public_key_path(home).is_file():
        return True   # the current pair's id is only known from its private half: apply checks
    return key_id in known_key_ids(home)


class KeyNotFound(RunError):
    """No key of this engine can open the value (as opposed to a value that does not decrypt)."""


def missing_key_message(home: Path, key_id: str | None, env_ids: tuple[str, ...] = ()) -> str:
    """What to do when no key of this engine opens a value (kept true to the commands that exist)."""
    folder = key_dir(home)
    if key_id is not None and (private_key_path(home).is_file() or env_keys_set()):
        ids = ", ".join([*env_ids, *known_key_ids(home)]) or "none"
        return (f"the value is sealed for key {key_id}, which this engine does not have (its keys: {ids}); "
                f"copy that key pair into {folder}/ (or {KEY_FILE_ENV}), or seal the value again with "
                "'agentform secret seal'")
    return (f"no engine key in {folder}/ (nor {KEY_FILE_ENV} or {KEY_ENV}): copy the key pair that sealed "
            f"this value there, or make one with 'agentform --home {home} secret keygen' and seal the value "
            "again with 'agentform secret seal'")


# -- sealing -------------------------------------------------------------------------------------


def current_public_key(home: Path) -> Any:
    """The public key values are sealed for: the first key of AGENTFORM_KEY_FILE/AGENTFORM_KEY,
    else ``<home>/keys/engine.pub``; NotFound saying how to make one."""
    env = _env_keys()
    if env:
        return env[0][1].public_key()
    path = public_key_path(home)
    if path.is_file():
        return load_public_key(path.read_bytes(), source=str(path))
    if private_key_path(home).is_file():
        return _load_private(private_key_path(home).read_bytes(), str(private_key_path(home))).public_key()
    raise NotFound(f"no engine key in {key_dir(home)}/: make one with 'agentform --home {home} secret keygen', "
                   "or seal with --public-key FILE (the output of 'agentform secret public-key')")


def public_pem(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def seal(value: str, public_key: Any, *, namespace: str, name: str) -> str:
    """``afs2:<key-id>:...``: ``value`` encrypted for ``public_key``, bound to ``namespace/name``."""
    blob = _suite().encrypt(value.encode(), public_key, info=info(namespace, name))
    return f"{V2}{key_id_of(public_key)}:{_b64(blob)}"


def seal_v1(value: str, public_key: Any, *, namespace: str, name: str) -> str:
    """The legacy ``afs1:`` form (no key id), for tests of its compatibility."""
    return V1 + _b64(_suite().encrypt(value.encode(), public_key, info=info(namespace, name)))


def unseal(sealed: str, *, home: Path, namespace: str, name: str) -> str:
    """Decrypt ``sealed`` for the Secret ``namespace/name``; RunError (never holding the value)
    saying which key is missing or that the value belongs to another Secret."""
    from cryptography.exceptions import InvalidTag

    label = f"{namespace}/{name}"
    try:
        parsed = parse(sealed)
    except ValueError as exc:
        raise RunError(f"secret {label}: {exc}") from None
    if parsed.key_id is not None:
        env = {key_id_of(k.public_key()): k for _, k in _env_keys()}
        key = env.get(parsed.key_id) or _home_key(home, parsed.key_id)
        if key is None:
            raise KeyNotFound(f"secret {label}: {missing_key_message(home, parsed.key_id, tuple(env))}")
        try:
            return _suite().decrypt(parsed.blob, key, info=info(namespace, name)).decode()
        except (InvalidTag, ValueError):
            raise RunError(
                f"secret {label}: the sealed value does not decrypt with key {parsed.key_id}: it was sealed "
                f"for another Secret (a value decrypts only as the namespace/name it was sealed for) or "
                f"altered; seal it again with 'agentform secret seal --namespace {namespace} --name {name}'"
            ) from None
    keys = _all_keys(home)
    if not keys:
        raise KeyNotFound(f"secret {label}: {missing_key_message(home, None)}")
    for key in keys:
        try:
            return _suite().decrypt(parsed.blob, key, info=info(namespace, name)).decode()
        except (InvalidTag, ValueError):
            continue
    raise RunError(
        f"secret {label}: the sealed afs1 value does not decrypt with any of this engine's "
        f"{len(keys)} key(s): it was sealed for another key, or for another Secret; seal it again with "
        f"'agentform secret seal --namespace {namespace} --name {name}'"
    )


def info(namespace: str, name: str) -> bytes:
    return f"agentform-secret:{namespace}/{name}".encode()


def _b64(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def _suite():
    from cryptography.hazmat.primitives import hpke

    return hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
