"""The errors edgernn raises.

Every error the project raises on purpose derives from :class:`EdgeRNNError`, so a caller can
catch one type. Each message says what was received, what was expected, and what to do.

    EdgeRNNError
    ├── MissingDependencyError  an optional extra (torch, onnx) is not installed
    ├── ConfigError             a model config, option or device profile is invalid
    ├── DataError               an input file or frame is malformed
    │   └── NonFiniteError      a frame holds NaN or inf
    ├── ContractError           a model contract is missing, malformed or from a newer edgernn
    ├── CheckpointError         a checkpoint is unreadable, corrupt or from a newer edgernn
    ├── ExportError             export failed, or produced a graph that computes something else
    ├── ModelError              an ONNX file cannot be loaded or is not a recurrent model
    ├── StreamingError          the model cannot be streamed (e.g. bidirectional)
    ├── SnapshotError           a state snapshot is corrupt or belongs to another model
    └── ParityError             an artifact differs from its reference beyond tolerance
"""

from __future__ import annotations


class EdgeRNNError(Exception):
    """Base class of every error edgernn raises on purpose."""


class MissingDependencyError(EdgeRNNError, ImportError):
    """An optional extra is needed for this operation."""

    def __init__(self, what: str, extra: str = "torch", module: str | None = None):
        self.extra = extra
        self.module = module
        super().__init__(
            f"{what} needs {module or extra}, which is not installed here. "
            f"Install the host extra: pip install 'edgernn[{extra}]'"
        )


class MissingProgramError(EdgeRNNError):
    """A program edgernn runs (not a Python package) is not installed; the message says how to
    install it."""


class ConfigError(EdgeRNNError, ValueError):
    """A configuration value is invalid."""


class DataError(EdgeRNNError, ValueError):
    """Input data (a file or a frame) is malformed."""


class NonFiniteError(DataError):
    """A frame holds NaN or infinite values."""


class ContractError(EdgeRNNError, ValueError):
    """A model contract is missing, malformed or of an unknown version."""


class CheckpointError(EdgeRNNError):
    """A checkpoint cannot be used."""


class ExportError(EdgeRNNError):
    """Export failed or produced a graph that fails parity."""


class ModelError(EdgeRNNError):
    """An ONNX model cannot be loaded or is not a recurrent model."""


class StreamingError(EdgeRNNError):
    """The model cannot be streamed as asked."""


class SnapshotError(EdgeRNNError):
    """A state snapshot is corrupt or belongs to another model."""


class ParityError(EdgeRNNError):
    """An artifact differs from its reference by more than the tolerance."""

    def __init__(self, message: str, report=None):
        self.report = report
        super().__init__(message)


class DataWarning(UserWarning):
    """Something edgernn changed in the user's data as it read it, and says so (labels stripped
    of spaces, for one)."""
