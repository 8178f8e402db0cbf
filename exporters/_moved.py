"""Modules of ``edgernn.exporters`` that moved when it was grouped by concern (from_torch/,
forms/, quant/, checks/), importable by their old path for one more release, with a
FutureWarning naming the new one: ``from edgernn.exporters.quantize import quantize`` goes on
working, and says where to import it from now. CHANGELOG.md records the move and the removal.

Three of the old module names are also the package's own functions (``export``, ``validate``,
``quantize``): importing the old module must not replace the function on the package, so the
package ignores a module being set over a function of the same name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

PACKAGE = "edgernn.exporters"
MOVED = {
    "calibrate": "quant.calibrate", "compact": "forms.compact", "difference":
    "from_torch.difference", "export": "from_torch.export", "fold": "from_torch.fold",
    "gate": "quant.gate", "graphs": "from_torch.modules", "int8": "quant.int8",
    "lean": "forms.lean", "lower": "forms.lower", "parity": "checks.parity",
    "qgraph": "quant.qgraph", "quantize": "quant.quantize", "source": "from_torch.source",
    "validate": "checks.validate", "validation_report": "checks.report",
}
REMOVED_IN = "0.3"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        name = spec.name.rpartition(".")[2]
        new = f"{PACKAGE}.{MOVED[name]}"
        warnings.warn(f"{spec.name} moved to {new}; import from there (or from {PACKAGE}, "
                      f"which keeps export, validate and quantize). The old path goes in "
                      f"edgernn {REMOVED_IN}", FutureWarning, stacklevel=2)
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__         # its own, which the import system replaces
        return module

    def exec_module(self, module):
        # the new module is already executed; put back the spec the import system replaced
        module.__spec__ = module.__spec__.loader_state


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in MOVED and isinstance(value, types.ModuleType) and callable(
                self.__dict__.get(name)) and not isinstance(self.__dict__.get(name),
                                                            types.ModuleType):
            return                                  # keep the package's function of that name
        super().__setattr__(name, value)


def install(package: types.ModuleType) -> None:
    """Make the old paths importable (once per process) and keep ``package``'s functions."""
    package.__class__ = _Package
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
