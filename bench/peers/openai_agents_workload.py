"""The 11-agent hierarchy on the OpenAI Agents SDK: callees via `agent.as_tool`, a custom `Model`.

Runs inside bench/.peers/openai_agents (see run_peers.py). The model implements
`agents.models.interface.Model`, the SDK's extension point for model providers.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from agents import Agent, AgentHooks, Runner, set_tracing_disabled  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from harness import COUNTS, LEADS, MANAGER  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

IMPORT_STMT = "import agents"


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


class ScriptedModel(Model):
    """First turn: call every callee in one response; after the tool outputs: answer with them."""

    def __init__(self, agent: str, callees: list[str], latency: float) -> None:
        self.agent, self.callees, self.latency = agent, callees, latency

    async def get_response(
        self, system_instructions: str | None, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        COUNTS.model_call(self.agent)
        items = [] if isinstance(input, str) else input
        results = [
            str(_field(i, "output")) for i in items if _field(i, "type") == "function_call_output"
        ]
        if self.callees and not results:
            output: list[Any] = [
                ResponseFunctionToolCall(
                    type="function_call",
                    id=f"fc_{c}",
                    call_id=f"call_{c}",
                    name=f"ask_{c}",
                    arguments=json.dumps({"input": c}),
                )
                for c in self.callees
            ]
        else:
            text = ResponseOutputText(
                type="output_text", annotations=[], text=harness.final_answer(self.agent, results)
            )
            output = [
                ResponseOutputMessage(
                    type="message",
                    id=f"msg_{self.agent}",
                    role="assistant",
                    status="completed",
                    content=[text],
                )
            ]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the workload does not stream")


class CountStarts(AgentHooks):
    """Counts agent invocations as the SDK sees them (an agent run starting)."""

    async def on_start(self, context: Any, agent: Any) -> None:
        COUNTS.invocation()


HOOKS = CountStarts()


def _agent(name: str, callees: list[str], tools: list[Any], latency: float) -> Agent:
    return Agent(
        name=name,
        instructions=f"You are {name}.",
        tools=tools,
        hooks=HOOKS,
        model=ScriptedModel(name, callees, latency),
    )


def _as_tool(agent: Agent) -> Any:
    return agent.as_tool(tool_name=f"ask_{agent.name}", tool_description=f"Ask {agent.name}.")


def build(latency: float):
    """Build the hierarchy once; return `run(task)` giving the manager's final answer."""
    set_tracing_disabled(True)
    lead_tools = []
    for lead, specs in LEADS.items():
        spec_tools = [_as_tool(_agent(s, [], [], latency)) for s in specs]
        lead_tools.append(_as_tool(_agent(lead, specs, spec_tools, latency)))
    manager = _agent(MANAGER, list(LEADS), lead_tools, latency)

    async def run(task: str) -> str:
        result = await Runner.run(manager, task)
        return str(result.final_output)

    return run


if __name__ == "__main__":
    harness.main(build, version("openai-agents"), IMPORT_STMT, os.path.abspath(__file__))
