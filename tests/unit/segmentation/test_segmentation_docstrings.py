"""The examples in the docstrings of the segmentation core run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["metrics", "synthetic", "watershed", "blockwise", "segments", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module("services.segmentation.core" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.attempted > 0, f"{module.__name__} has no runnable example"
    assert result.failed == 0
