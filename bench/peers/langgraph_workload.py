"""The 11-agent hierarchy on LangGraph: prebuilt ReAct agents, callees as async tools, a fake chat model.

Runs inside bench/.peers/langgraph (see run_peers.py). The model is a `BaseChatModel`
subclass, LangChain's own extension point for chat models, scripted by message history.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from importlib.metadata import version
from typing import Any

# No LangSmith tracing: the peers persist and send nothing.
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["LANGCHAIN_TRACING_V2"] = "false"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import COUNTS, LEADS, MANAGER  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.tools import StructuredTool  # noqa: E402
from langgraph.prebuilt import create_react_agent  # noqa: E402

IMPORT_STMT = "import langgraph.prebuilt, langchain_core.language_models"


class ScriptedChatModel(BaseChatModel):
    """First turn: call every callee in one message; after the tool results: answer with them."""

    agent: str
    callees: list[str] = []
    latency: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self  # the script already knows which tools to call

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        COUNTS.model_call(self.agent)
        results = [str(m.content) for m in messages if isinstance(m, ToolMessage)]
        if self.callees and not results:
            calls = [
                {"name": f"ask_{c}", "args": {"task": c}, "id": f"call_{c}", "type": "tool_call"}
                for c in self.callees
            ]
            message = AIMessage(content="", tool_calls=calls)
        else:
            message = AIMessage(content=harness.final_answer(self.agent, results))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._reply(messages)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._reply(messages)


def _agent(name: str, callees: list[str], tools: list[StructuredTool], latency: float):
    model = ScriptedChatModel(agent=name, callees=callees, latency=latency)
    with warnings.catch_warnings():
        # Deprecated in LangGraph 1.0 in favour of langchain.agents.create_agent, still shipped.
        warnings.simplefilter("ignore")
        return create_react_agent(model, tools, name=name)


def _as_tool(name: str, graph: Any) -> StructuredTool:
    """An agent graph behind a tool `ask_<name>(task)` returning its final answer."""

    async def ask(task: str) -> str:
        COUNTS.invocation()
        state = await graph.ainvoke({"messages": [HumanMessage(content=task)]})
        return str(state["messages"][-1].content)

    return StructuredTool.from_function(
        coroutine=ask, name=f"ask_{name}", description=f"Ask {name} to do a task."
    )


def build(latency: float):
    """Compile the hierarchy once; return `run(task)` giving the manager's final answer."""
    lead_tools = []
    for lead, specs in LEADS.items():
        spec_tools = [_as_tool(s, _agent(s, [], [], latency)) for s in specs]
        lead_tools.append(_as_tool(lead, _agent(lead, specs, spec_tools, latency)))
    manager = _agent(MANAGER, list(LEADS), lead_tools, latency)

    async def run(task: str) -> str:
        COUNTS.invocation()
        state = await manager.ainvoke({"messages": [HumanMessage(content=task)]})
        return str(state["messages"][-1].content)

    return run


if __name__ == "__main__":
    harness.main(build, version("langgraph"), IMPORT_STMT, os.path.abspath(__file__))
