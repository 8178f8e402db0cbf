"""edgernn: recurrent networks from PyTorch to ONNX to a device, streamed with persistent state.

Importing ``edgernn`` is cheap and pulls in neither torch nor onnx: the host-side pieces live in
``edgernn.models``, ``edgernn.training``, ``edgernn.tasks`` and ``edgernn.exporters`` and are
imported when used; the device side is ``edgernn.runtime``.
"""

from edgernn.contract import CONTRACT_KEY, Contract
from edgernn.errors import (
    CheckpointError,
    ConfigError,
    ContractError,
    DataError,
    EdgeRNNError,
    ExportError,
    MissingDependencyError,
    ModelError,
    NonFiniteError,
    ParityError,
    SnapshotError,
    StreamingError,
)

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_KEY",
    "CheckpointError",
    "ConfigError",
    "Contract",
    "ContractError",
    "DataError",
    "EdgeRNNError",
    "ExportError",
    "MissingDependencyError",
    "ModelError",
    "NonFiniteError",
    "ParityError",
    "SnapshotError",
    "StreamingError",
    "__version__",
]
