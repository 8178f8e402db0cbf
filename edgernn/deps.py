"""Optional dependencies: import them on demand, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgernn.errors import MissingDependencyError


def require(module: str, what: str, extra: str = "torch") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(what, extra=extra, module=module) from None
