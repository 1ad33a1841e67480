"""A ToolServer field its transport ignores (``env`` on http/sse, ``headers`` on stdio, ``url``
on stdio, ``command`` on http/sse) is a located error that says where the value belongs."""

from __future__ import annotations

H = "apiVersion: agentform.dev/v1alpha1\nkind: ToolServer\n"


def test_env_on_an_http_server_is_an_error_at_env(tree):
    text = H + ("metadata: {name: remote}\nspec:\n  transport: http\n  url: http://127.0.0.1:9/mcp\n"
                "  env:\n    API_KEY: {secretRef: key}\n")
    found = [d for d in tree({"ts.yaml": text}) if "spec.env" in d]
    assert found == ["ts.yaml:7:3: spec.env does nothing on a ToolServer with transport: http (it is for "
                     "stdio servers); an http server is not a process of the engine's: send credentials with "
                     "'headers' (e.g. Authorization: {secretRef: ..., format: 'Bearer {}'})"]


def test_headers_on_a_stdio_server_is_an_error_at_headers(tree):
    text = H + ("metadata: {name: local}\nspec:\n  command: [python, server.py]\n"
                "  headers: {Authorization: Bearer x}\n")
    assert tree({"ts.yaml": text}) == [
        "ts.yaml:6:3: spec.headers does nothing on a ToolServer with transport: stdio (it is for http "
        "and sse servers); a stdio server gets no HTTP requests: give it values through 'env'"]


def test_every_misplaced_field_is_reported_at_once(tree):
    text = H + ("metadata: {name: both}\nspec:\n  transport: sse\n  url: http://127.0.0.1:9/sse\n"
                "  command: [srv]\n  env: {A: b}\n")
    sse = [d.split(": ", 1)[1].split(";")[0] for d in tree({"ts.yaml": text})]
    assert sse == ["spec.command does nothing on a ToolServer with transport: sse (it is for stdio servers)",
                   "spec.env does nothing on a ToolServer with transport: sse (it is for stdio servers)"]
    stdio = H + "metadata: {name: local}\nspec:\n  command: [srv]\n  url: http://127.0.0.1:9/mcp\n  env: {}\n"
    assert [d.split(": ", 1)[1].split(";")[0] for d in tree({"ts.yaml": stdio})] == [
        "spec.url does nothing on a ToolServer with transport: stdio (it is for http and sse servers)"]


def test_fields_that_belong_to_the_transport_pass(tree):
    ok = (H + "metadata: {name: local}\nspec:\n  command: [srv]\n  env: {A: b}\n---\n"
          + H + "metadata: {name: remote}\nspec:\n  transport: http\n  url: http://127.0.0.1:9/mcp\n"
          "  headers: {X-Key: v}\n")
    assert tree({"ts.yaml": ok}) == []
