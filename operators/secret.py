"""Secret operator: checks that the source is there (env var, file, decryptable sealed value).

The value is read only to check it (``ValueTooShort`` under 8 characters: it could not be
redacted safely) and registered with the redactor, so whatever apply writes next is
redacted too; the store records only whether it can be had, and why not.
"""

from __future__ import annotations

from agentform.engine.secrets import SecretSource, check_source, probe_source
from agentform.operators.base import BaseOperator, OperatorContext, failed, ready, register


class SecretOperator(BaseOperator):
    kind = "Secret"

    def provision(self, ctx: OperatorContext, desired):
        return self.observe(ctx, desired)

    def observe(self, ctx: OperatorContext, desired):
        check = check_source if ctx.resolve_secrets else probe_source
        result = check(SecretSource.from_document(desired.document), home=ctx.home)
        return ready(result.reason, result.message) if result.ok else failed(result.reason, result.message)


register(SecretOperator())
