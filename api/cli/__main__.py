"""``python -m agentform.api.cli``: the same entry point as the console script."""

from agentform.api.cli import main

main()
