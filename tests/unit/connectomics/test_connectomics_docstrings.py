"""The examples in the docstrings of the connectomics modules not covered by their own tests run."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["services.connectomics.core", "services.connectomics.core.contacts", "services.connectomics.core.simulated",
           "services.connectomics.core.graph_io", "services.connectomics.requests", "services.connectomics.plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
