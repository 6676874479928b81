"""FM_XXX, the break. TODO(FM_XXX): say in one paragraph what the reader will see."""

import pytest


def test_the_break_is_reported():
    pytest.fail(
        "FM_XXX is a scaffold: write the repro. Run the baseline (GUARDED without this FM's "
        "lever) and assert that the named INV_XXX is reported with its evidence "
        "(see failure_modes/FM_001_duplicate_retry/tests/test_repro_fm001.py)."
    )
