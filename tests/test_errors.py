"""One exception tree: every exception class a mesa module exports derives from MesaError."""

from __future__ import annotations

import importlib
import pkgutil

import mesa
from mesa.errors import MesaError


def _public_exceptions():
    for info in pkgutil.walk_packages(mesa.__path__, "mesa."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # a module of an extra that is not installed (CI installs them all)
            continue
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name, None)
            if isinstance(value, type) and issubclass(value, BaseException):
                yield f"{info.name}.{name}", value


def test_every_public_exception_is_a_mesa_error():
    found = dict(_public_exceptions())
    assert "mesa.errors.MediaError" in found and "mesa.tools.MissingExtraError" in found
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, MesaError))
    assert outside == []


def test_the_tools_missing_extra_error_is_the_same_class():
    from mesa.tools import MissingExtraError as ToolsMissingExtraError

    assert ToolsMissingExtraError is mesa.MissingExtraError
