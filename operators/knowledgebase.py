"""KnowledgeBase operator: indexes the sources at apply, incrementally; status says what is indexed.

``plan`` pinned each document's sha256 (engine/knowledge/sources.py), so an edited, added or
removed document makes the KnowledgeBase an update; ``provision`` then re-embeds the changed
documents only and removes the points of deleted ones (engine/knowledge/index.py). Ready's
message holds the documents, chunks and the revision indexed. Prune removes an embedded
index from the engine home (a Qdrant server's collection is left to its owner).
"""

from __future__ import annotations

import shutil
from typing import Any

from agentform.engine.errors import KnowledgeError
from agentform.operators.base import BaseOperator, OperatorContext, failed, ready, register
from agentform.specs import ResourceKey


class KnowledgeBaseOperator(BaseOperator):
    kind = "KnowledgeBase"

    def provision(self, ctx: OperatorContext, desired: Any):
        from agentform.engine.knowledge.index import index
        from agentform.engine.knowledge.search import make_target
        from agentform.engine.knowledge.sources import SourceProblem

        key = desired.key
        try:
            target = make_target(key.namespace, key.name, desired.resource.spec, desired.resolved,
                                 home=ctx.home, secrets=_secrets(ctx, desired))
            report = index(target, revision=ctx.next_revision)
        except SourceProblem as exc:
            return failed("SourcesInvalid", f"{exc}; fix spec.sources[{exc.index}].path")
        except KnowledgeError as exc:
            return failed("IndexFailed", str(exc))
        except Exception as exc:  # noqa: BLE001 - Qdrant or a provider: this resource's status, not a crash
            from agentform.engine.redaction import redact_text

            return failed("IndexFailed", redact_text(f"{type(exc).__name__}: {exc}"))
        return ready("Indexed", report.message())

    def teardown(self, ctx: OperatorContext, applied: Any) -> None:
        folder = ctx.home / "knowledge" / applied.key.namespace / applied.key.name
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def _secrets(ctx: OperatorContext, desired: Any) -> dict[str, dict[str, Any]]:
    """The sources of the Secrets the embedding and the Qdrant server name (resolved at use)."""
    from agentform.engine.graph import node_key
    from agentform.engine.secrets import SecretSource

    spec, ns = desired.resource.spec, desired.key.namespace
    server = spec.store.qdrant
    refs = [spec.embedding.api_key, None if isinstance(server, str) else server.api_key]
    out: dict[str, dict[str, Any]] = {}
    for ref in refs:
        if ref is None:
            continue
        sns, sname = ref.secret_ref.resolve(ns)
        secret = ctx.desired.get(ResourceKey("Secret", sns, sname))
        if secret is not None:
            out[node_key(sns, sname)] = SecretSource.from_document(secret.document).to_dict()
    return out


register(KnowledgeBaseOperator())
