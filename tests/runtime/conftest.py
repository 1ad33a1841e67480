"""The runtime tests import their helpers (helpers.py, openai_stub.py) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
