"""Optional dependencies: check that a backend's modules are installed (without importing them), build the
:class:`~mesa.errors.MissingExtraError` with its ``pip install`` hint, read installed versions."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from importlib import metadata

from mesa.errors import MissingExtraError

__all__ = ["distribution_version", "missing_extra", "require_modules"]


def missing_extra(what: str, extra: str, missing: Sequence[str] = ()) -> MissingExtraError:
    """A :class:`MissingExtraError` that also names the missing import modules (``.missing``)."""
    detail = f" (missing: {', '.join(missing)})" if missing else ""
    error = MissingExtraError(what + detail, extra, missing[0] if missing else None)
    error.missing = tuple(missing)
    return error


def require_modules(what: str, extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every module can be imported (without importing it)."""
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise missing_extra(what, extra, missing)


def distribution_version(*names: str) -> str | None:
    """The installed version of the first of ``names`` that is installed."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
