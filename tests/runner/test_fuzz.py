"""Random override lists (a fixed seed, a few of them): each ends completed or with exit
1/2, never with a traceback. ``python scripts/fuzz_overrides.py`` runs 200."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "fuzz_overrides", REPO / "scripts" / "fuzz_overrides.py"
)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

LISTS = fuzz.override_lists(seed=14, count=12)


def test_lists_are_reproducible_and_varied():
    assert fuzz.override_lists(seed=14, count=12) == LISTS
    flat = [o for overrides in LISTS for o in overrides]
    assert len(set(flat)) > 15
    keys = {o.split("=", 1)[0] for o in flat}
    assert any("." in k for k in keys) and {"loss", "optimizer"} <= keys


@pytest.mark.parametrize("overrides", LISTS, ids=[" ".join(o)[:60] for o in LISTS])
def test_fuzzed_overrides_end_cleanly(tmp_path, overrides):
    assert fuzz.check(overrides, tmp_path / "run") is None
