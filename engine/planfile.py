"""Saved plans (``plan --out FILE``, ``apply FILE``): the plan and the exact desired documents.

A saved plan pins the store state it was made against (latest revision number and a hash
of everything applied); ``apply FILE`` refuses it (PlanStale) when the store changed since.

The file is bound to its content by an HMAC-SHA256 under the store's ``plan`` key
(``store.hmac_key``): every byte of the file except the digest's own hex is signed, so an
edited file, or one made against another store, is refused (PlanDigestMismatch). The digest
sits in the first line, whose layout is fixed, so it can be found without trusting the
rest::

    {"kind": "AgentformPlan", "version": 2, "digest": "sha256-hmac:<64 hex>",
     ...the plan, sorted keys...}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentform.engine.desired import Desired, from_document
from agentform.engine.errors import PlanDigestMismatch, PlanStale, UsageError
from agentform.engine.plan import Plan

PLAN_KIND = "AgentformPlan"
PLAN_VERSION = 2
PLAN_KEY = "plan"                 # the store key (store.hmac_key) that signs plan files
DIGEST_PREFIX = "sha256-hmac:"
_HEADER = f'{{"kind": "{PLAN_KIND}", "version": {PLAN_VERSION}, "digest": "{DIGEST_PREFIX}'
_HEADER_RE = re.compile(re.escape(_HEADER.encode()) + rb'([0-9a-f]{64})",\n')
_BLANK = b"0" * 64                # what stands for the digest while signing


@dataclass
class SavedPlan:
    app: str
    prune: bool
    root: str
    base_revision: int | None
    applied_hash: str
    actions: list[tuple[str, str]]             # (action, resource key) of the changing entries
    desired: list[Desired]
    failed_files: list[str] = field(default_factory=list)
    digest: str = ""


def key_id(key: bytes) -> str:
    """A short public name of a key, to tell "another store" from "edited" (reveals nothing of it)."""
    return hashlib.sha256(b"agentform-key-id:" + key).hexdigest()[:16]


def _sign(key: bytes, signed: bytes) -> str:
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def save_plan(plan: Plan, path: Path, *, root: Path, failed_files: list[str], key: bytes) -> str:
    """Write ``plan`` and its desired documents to ``path``; returns the digest (``sha256-hmac:...``)."""
    data: dict[str, Any] = {
        "keyId": key_id(key), "root": str(root), "failedFiles": failed_files,
        "plan": plan.to_dict(),
        "desired": [{"source": d.source, "document": d.document} for d in plan.desired],
    }
    body = json.dumps(data, indent=1, sort_keys=True)   # "{\n ...}": the header takes the brace
    rest = body[2:].encode("utf-8") + b"\n"
    head = _HEADER.encode()
    mac = _sign(key, head + _BLANK + b'",\n' + rest)
    Path(path).write_bytes(head + mac.encode() + b'",\n' + rest)
    return DIGEST_PREFIX + mac


def is_plan_file(path: Path) -> bool:
    """Does ``path`` look like a saved plan (a JSON file whose kind is AgentformPlan)?"""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() in (".yaml", ".yml"):
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and PLAN_KIND.encode() in head


def load_plan(path: Path, *, key: bytes, expect_digest: str | None = None) -> SavedPlan:
    """Read a saved plan and check its digest under ``key`` (and against ``expect_digest``).

    UsageError when it is not a plan this engine writes; PlanDigestMismatch when its content
    is not what ``plan`` signed with this store's key, or its digest is not the expected one.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: not a readable plan file: {exc.strerror or exc}") from None
    header = _HEADER_RE.match(raw)
    if header is None:
        raise UsageError(f"{path}: not an agentform plan of version {PLAN_VERSION} with a digest "
                         "(older plan files are not signed); run plan --out again")
    mac = header[1].decode()
    digest = DIGEST_PREFIX + mac
    signed = raw[:header.start(1)] + _BLANK + raw[header.end(1):]
    if not hmac.compare_digest(_sign(key, signed), mac):
        theirs = _key_id_of(raw)
        if theirs is not None and theirs != key_id(key):
            raise PlanDigestMismatch(
                f"{path}: this plan was made against another state store (key id {theirs}, this "
                f"store's is {key_id(key)}); run plan --out against this store")
        raise PlanDigestMismatch(f"{path}: the plan file was changed after plan wrote it (its digest "
                                 f"{digest} does not match its content); run plan --out again")
    data = json.loads(raw)  # signed by us: valid JSON
    if expect_digest is not None and not hmac.compare_digest(expect_digest.strip(), digest):
        raise PlanDigestMismatch(f"{path}: its digest is {digest}, not the expected {expect_digest.strip()} "
                                 "(--expect-digest); apply the plan file that was reviewed")
    plan = data["plan"]
    return SavedPlan(
        app=plan["app"], prune=plan["prune"], root=data.get("root", ""),
        base_revision=plan["baseRevision"], applied_hash=plan["appliedHash"],
        actions=sorted((c["action"], c["resource"]) for c in plan["changes"]
                       if c["action"] in ("create", "update", "delete")),
        desired=[from_document(d["document"], d.get("source", "")) for d in data["desired"]],
        failed_files=list(data.get("failedFiles", [])), digest=digest,
    )


def _key_id_of(raw: bytes) -> str | None:
    """The keyId an (unverified) plan file names, to word the refusal; None when unreadable."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    found = data.get("keyId") if isinstance(data, dict) else None
    return found[:16] if isinstance(found, str) else None


def check_fresh(saved: SavedPlan, current: Plan, path: Path) -> None:
    """PlanStale unless the store is where it was when the plan was made and the plan is the same."""
    if saved.base_revision != current.base_revision or saved.applied_hash != current.applied_hash:
        raise PlanStale(
            f"{path}: the store changed since this plan was made (planned against revision "
            f"{saved.base_revision or 'none'}, now {current.base_revision or 'none'}); run plan again"
        )
    now = sorted((c.action, c.name) for c in current.changes if c.action in ("create", "update", "delete"))
    if now != saved.actions:
        raise PlanStale(f"{path}: the plan no longer matches the store; run plan again")
