"""Host side: export to ONNX, validate parity against PyTorch, quantize.

Needs the host extra: ``pip install 'edgernn[torch]'``. Quantizing an exported file needs onnx
but not torch (:mod:`edgernn.exporters.quantize` works from the file alone): without torch
this package still imports, and export and validate name the extra to install when used.
"""

from edgernn.deps import require

require("onnx", "edgernn.exporters")

__all__ = ["DEFAULT_EXPORTER", "EXPORTERS", "ExportResult", "Tolerances", "ValidationReport",
           "export", "validate"]

try:
    import torch  # noqa: F401
except ImportError:
    def __getattr__(name: str):
        if name in __all__:
            require("torch", f"edgernn.exporters.{name}")
        raise AttributeError(f"module 'edgernn.exporters' has no attribute {name!r}")
else:
    from edgernn.exporters.export import (DEFAULT_EXPORTER, EXPORTERS, ExportResult,  # noqa: E402
                                          export)
    from edgernn.exporters.validate import Tolerances, ValidationReport, validate  # noqa: E402
