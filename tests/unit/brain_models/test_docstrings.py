"""The examples in the docstrings of the brain-model cores run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch

MODULES = ["services.simulation.core.bayesian_observer", "services.simulation.core.predictive_coding",
           "services.reduction.core.circuit_inference", "services.reduction.core.learning_rules"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and extra threads spin-wait on the examples' tiny tensors."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
