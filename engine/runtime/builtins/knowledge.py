"""knowledge: ``search_knowledge`` over the knowledge bases an agent names in ``tools: [{knowledge: NAME}]``.

One server per run serves every agent; which bases a call searches comes from the caller's
own tool entries (never from the model), narrowed by ``filter.knowledgeBase``. The first
search of a base in a process makes sure its index exists on this machine (a missing
embedded index is built from the sources pinned at apply) and loads it; later searches embed
the query and ask Qdrant (engine/knowledge/search.py). Results are chunks with their source
path and 1-based line range, ``citation`` = ``path:start-end``, so answers can cite.
Searching is read-only: a resumed or replayed run serves recorded results like any tool's.
"""

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field

from agentform.engine.errors import AgentformError

from . import Caller, take_caller

TOOLS = ("search_knowledge",)


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str | None = Field(default=None, max_length=1000,
                             description="only documents whose path matches this glob, e.g. 'guides/*.md'")
    knowledge_base: str | None = Field(default=None, alias="knowledgeBase", max_length=200,
                                       description="only this knowledge base (by name)")


def make_server(ctx: Any) -> MCPServer:
    server = MCPServer("knowledge")
    targets: dict[str, Any] = {}   # per run: API keys are resolved once

    def target(namespace: str, name: str) -> Any:
        from agentform.engine.knowledge.search import make_target

        key = f"{namespace}/{name}"
        if key not in targets:
            spec = ctx.graph.knowledge.get(key)
            if spec is None:
                raise ToolError(f"knowledge base {key} is not part of this run's revision")
            targets[key] = make_target(namespace, name, spec, ctx.graph.knowledge_sources.get(key, {}),
                                       home=ctx.home, secrets=ctx.graph.secrets)
        return targets[key]

    def bases_of(caller: Caller, only: str | None) -> list[tuple[str, str]]:
        node = caller.node
        bases = [use.knowledge.resolve(node.namespace) for use in node.spec.tools if use.knowledge is not None]
        if only:
            chosen = [b for b in bases if only in (b[1], f"{b[0]}/{b[1]}")]
            if not chosen:
                names = ", ".join(n for _, n in bases)
                raise ToolError(f"no knowledge base '{only}' among yours ({names})")
            bases = chosen
        return list(dict.fromkeys(bases))

    @server.tool(description="Search your knowledge bases. Returns the most relevant chunks, each with its "
                 "source path and line range (cite them as path:start-end), best first.")
    async def search_knowledge(
        query: Annotated[str, Field(min_length=1, max_length=4000, description="what to look for")],
        context: Context,
        top_k: Annotated[int, Field(ge=1, le=50, description="how many chunks to return")] = 5,
        filter: SearchFilter | None = None,
    ) -> dict[str, Any]:
        from agentform.engine.knowledge.search import search

        caller = take_caller(context.request_context.meta)
        try:
            chosen = [target(ns, name) for ns, name in bases_of(caller, filter.knowledge_base if filter else None)]
            result = await asyncio.to_thread(search, chosen, query, top_k, filter.path if filter else None)
        except AgentformError as exc:
            raise ToolError(str(exc)) from None
        return result.to_dict()

    return server
