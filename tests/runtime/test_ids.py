"""Run ids: sortable by creation time, fixed length, lower-case Crockford base32."""

from __future__ import annotations

import re

from agentform.engine.ids import new_id


def test_ids_sort_in_creation_order_even_within_one_millisecond():
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)


def test_ids_carry_their_time_and_are_deterministic_given_time_and_randomness():
    early, late = new_id(1_700_000_000.0, bytes(10)), new_id(1_700_000_000.5, bytes(10))
    assert early < late and early[:10] != late[:10]
    assert new_id(1_700_000_000.0, bytes(10)) == early
