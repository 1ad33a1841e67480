"""The HTTP face: the JSON API, SSE and the web view over ``agentform.Engine``."""
