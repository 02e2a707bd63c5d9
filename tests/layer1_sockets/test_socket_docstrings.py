"""The examples in the package's docstrings run, as the API reference shows them."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import layer1_sockets

MODULES = ["layer1_sockets"] + [
    f"layer1_sockets.{info.name}" for info in pkgutil.iter_modules(layer1_sockets.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_every_public_class_and_function_is_documented() -> None:
    for name in layer1_sockets.__all__:
        value = getattr(layer1_sockets, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
            if inspect.isclass(value):
                for member, attribute in vars(value).items():
                    if not member.startswith("_") and callable(attribute):
                        assert inspect.getdoc(attribute), f"{name}.{member}"
