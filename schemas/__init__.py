"""Generated JSON Schema of the manifests (agentform schema); never hand-edited."""
