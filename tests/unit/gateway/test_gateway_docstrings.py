"""The examples in the job engine's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gateway.jobs.digests", "gateway.jobs.dag", "gateway.jobs.spec", "gateway.jobs.states",
           "gateway.jobs.errors", "gateway.jobs.retry", "gateway.jobs.cache", "gateway.jobs.executor",
           "gateway.jobs.metrics", "gateway.jobs.settings", "gateway.jobs.database", "gateway.jobs.store",
           "gateway.jobs.runner",
           "gateway.settings", "gateway.auth", "gateway.artifacts.keys", "gateway.artifacts.uploads",
           "gateway.calls.methods", "gateway.api.models", "gateway.api.errors", "gateway.api.events",
           "gateway.api.middleware", "gateway.api.submission", "gateway.api.views"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
