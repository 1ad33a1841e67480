from __future__ import annotations

import pytest

from .receiver import Receiver


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()
