"""Host side: export to ONNX, validate parity against PyTorch, quantize.

Needs the host extra: ``pip install 'edgernn[torch]'``. Quantizing an exported file needs onnx
but not torch (:mod:`edgernn.exporters.quant.quantize` works from the file alone): without torch
this package still imports, and export and validate name the extra to install when used.
"""

from edgernn.deps import require

require("onnx", "edgernn.exporters")

# Grouped by concern (docs/architecture.md): from_torch/ (PyTorch to ONNX), forms/ (the graph
# forms edgernn writes itself), graph.py (editing graphs), quant/ (quantization, no torch),
# checks/ (parity and validation), artifact.py (the contract inside a file).

__all__ = ["DEFAULT_EXPORTER", "EXPORTERS", "ExportResult", "Gate", "QuantizeReport",
           "Tolerances", "ValidationReport", "export", "quantize", "validate"]

from edgernn.exporters.quant.quantize import Gate, QuantizeReport, quantize  # noqa: E402

try:
    import torch  # noqa: F401
except ImportError:
    def __getattr__(name: str):
        if name in __all__:                        # what needs torch: export, validate
            require("torch", f"edgernn.exporters.{name}")
        raise AttributeError(f"module 'edgernn.exporters' has no attribute {name!r}")
else:
    from edgernn.exporters.from_torch.export import (DEFAULT_EXPORTER, EXPORTERS, ExportResult,  # noqa: E402
                                          export)
    from edgernn.exporters.checks.validate import Tolerances, ValidationReport, validate  # noqa: E402

from edgernn.exporters import _moved  # noqa: E402  (the modules that moved keep their old paths)

_moved.install(__import__("sys").modules[__name__])
