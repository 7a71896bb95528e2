"""Shared test setup: hypothesis profiles.

``default``: 200 random examples per property. ``ci`` (chosen when $CI is set): the same
number, derandomized, so CI is repeatable. ``thorough``: 5,000 examples, for a long hunt:
``HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_formats.py``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", max_examples=200)
settings.register_profile("ci", max_examples=200, derandomize=True, database=None)
settings.register_profile("thorough", max_examples=5000)
_default = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default)
