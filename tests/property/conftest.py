"""Hypothesis profiles for the property tests.

``ci`` (the default): fixed, derandomized examples (the same every run), no example database, and a
per-example deadline that catches a hang without flaking on 2 loaded cores. ``long``: ten times the
examples, fresh random seeds each run. Choose with ``HYPOTHESIS_PROFILE=long``::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/property
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

DEADLINE = timedelta(seconds=60)  # a hang, not a slow example: CI shares 2 cores with other jobs
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

COMMON = {"database": None, "deadline": DEADLINE, "suppress_health_check": SLOW_OK}
settings.register_profile("ci", derandomize=True, max_examples=60, **COMMON)
settings.register_profile("long", derandomize=False, max_examples=600, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_reranker(tiny_xlmr_dir):
    """The tiny XLM-R cross-encoder (real tokenizer, random weights), torch fp32, loaded once."""
    from crossrank import Reranker

    return Reranker(str(tiny_xlmr_dir), backend="torch", dtype="fp32", max_length=64, max_windows=4)


@pytest.fixture(scope="session")
def tiny_flag(tiny_xlmr_dir):
    from crossrank import FlagReranker

    return FlagReranker(str(tiny_xlmr_dir), max_length=64)
