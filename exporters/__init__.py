"""Host side: export to ONNX and validate parity against PyTorch.

Needs the host extra: ``pip install 'edgernn[torch]'``.
"""

from edgernn.deps import require

require("torch", "edgernn.exporters")
require("onnx", "edgernn.exporters")

from edgernn.exporters.export import DEFAULT_EXPORTER, EXPORTERS, ExportResult, export  # noqa: E402
from edgernn.exporters.validate import Tolerances, ValidationReport, validate  # noqa: E402

__all__ = ["DEFAULT_EXPORTER", "EXPORTERS", "ExportResult", "Tolerances", "ValidationReport",
           "export", "validate"]
