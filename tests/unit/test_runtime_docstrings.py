"""The examples in the docstrings of the shared runtime and the services' figures run."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["services.common.models", "services.common.rpc", "services.common.estimators", "services.common.figures", "services.common.compute",
           "services.common.progress", "services.common.results", "services.common.settings", "services.common.outcomes",
           "services.decoding.plots", "services.reduction.plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
