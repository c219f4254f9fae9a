from __future__ import annotations

from pathlib import Path

import pytest

# Re-exported for the test modules that still import them from here; new code
# imports shared helpers from tests.helpers.
from tests.helpers import FIXTURES, ROOT, assert_one_line_error, run_cli  # noqa: F401


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
