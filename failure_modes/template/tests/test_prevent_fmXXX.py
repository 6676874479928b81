"""FM_XXX, the fix. TODO(FM_XXX): say in one paragraph why the guard is enough."""

import pytest


def test_the_fix_holds():
    pytest.fail(
        "FM_XXX is a scaffold: write the prevent test. Under GUARDED assert no invariant is "
        "violated, for the scripted schedule and for at least 200 explored seeds "
        "(see failure_modes/FM_001_duplicate_retry/tests/test_prevent_fm001.py)."
    )
