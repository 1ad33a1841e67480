"""schemathesis against the OpenAPI document of a real ``serve`` (uvicorn on 127.0.0.1): generated
requests to every operation (positive and negative), with a token that has every scope, find
no server error, and every answer conforms to the document (status codes, content types,
bodies). schemathesis' own pytest plugin does not load under this pytest, so each operation's
hypothesis strategy is driven here, one test per operation."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from http_helpers import ROOT
from http_serving import served
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _document() -> dict:
    from agentform.api.http.app import create_app

    return create_app(None).openapi()   # the document alone: no engine is touched


SCHEMA = schemathesis.openapi.from_dict(_document())
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
# Negative cases exist only where a request has something to get wrong: parameters or a body.
CASES = [(label, mode) for label in sorted(OPERATIONS) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or OPERATIONS[label].definition.raw.get("parameters")
         or OPERATIONS[label].definition.raw.get("requestBody")]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    import agentform

    home = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{home}/state.db"
    with served(url, home, rate_limit=0) as server:
        setup = agentform.Engine(home=home, store=url)
        try:
            setup.apply(ROOT / "examples" / "hello")
            done = asyncio.run(setup.run("agent/greeter", input="hello"))
            assert done.status == "succeeded"
        finally:
            setup.close()
        server.token = server.engine.token_create(["read", "run", "approve"]).token
        yield server


def test_the_served_document_is_the_one_tested(api):
    import httpx

    assert httpx.get(f"{api.url}/openapi.json").json() == _document()


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{m.value}-{label}" for label, m in CASES])
def test_every_operation_answers_without_a_server_error_and_as_documented(api, label, mode):
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        # Every check but "positive data acceptance": a schema-valid request the engine refuses on
        # its merits (an unknown target, a diff from revision 5 to 2) is a documented 422.
        case.call_and_validate(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=30,
                               excluded_checks=[positive_data_acceptance])

    check()
