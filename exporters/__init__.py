"""Host side: export to ONNX, validate parity (quantization follows).

Needs the host extra: ``pip install 'edgernn[torch]'``.
"""

from edgernn.deps import require

require("torch", "edgernn.exporters")
require("onnx", "edgernn.exporters")

from edgernn.exporters.export import DEFAULT_EXPORTER, ExportResult, export  # noqa: E402

__all__ = ["DEFAULT_EXPORTER", "ExportResult", "export"]
