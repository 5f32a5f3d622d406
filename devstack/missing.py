"""A tool or server a test needs is missing: skipped on a developer's machine, a failure under CI.

CI (``CI`` set) installs everything itself (`.ci/run`, `hack/setup.sh`), so a missing tool there is
a broken setup that must not pass as a green run that tested less.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI)", pytrace=False)
    pytest.skip(reason)
