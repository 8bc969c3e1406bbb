"""The examples in the metric docstrings run and print what they show."""

import doctest
import importlib

import pytest

MODULES = ["calibration", "classification", "label_noise", "temperature"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"losslab.metrics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
