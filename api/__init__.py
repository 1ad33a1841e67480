"""The faces over the engine: CLI, HTTP, MCP server."""
