"""The MCP server face: the engine as an MCP server over stdio, through ``agentform.Engine``."""
