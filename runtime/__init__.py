"""The device side of edgernn: load an exported model and stream it.

    model = edgernn.runtime.load("model.onnx")          # shareable across threads
    stream = model.stream()                             # owns one sequence's state
    y = stream.step(frame)                              # one time step
    ys = stream.feed(frames)                            # many steps in one call
    blob = stream.snapshot(); stream.restore(blob)      # state to bytes and back
    pool = model.pool(); a = pool.open()                # many streams, one batched call
    out = pool.step({a: frame})
    ys = model.step_streams([s1, s2], frames)           # Streams batched in one call
    except edgernn.runtime.DataError: ...               # the errors, re-exported here

Imports numpy, onnxruntime and the standard library only, never torch or onnx.
"""

from edgernn.errors import (
    ConfigError,
    ContractError,
    DataError,
    EdgeRNNError,
    ModelError,
    NonFiniteError,
    SnapshotError,
    StreamingError,
)
from edgernn.runtime.durable import Durable, state_file_lock, step_record
from edgernn.runtime.metadata import contract_of, open_session, signature
from edgernn.runtime.model import InferredContractWarning, Model, load
from edgernn.runtime.pool import Pool, RowsInteractWarning
from edgernn.runtime.providers import ProviderFallbackWarning
from edgernn.runtime.stream import Stream

# The public names, pinned by tests/test_api.py: a change here is a change of the API.
__all__ = [
    "ConfigError",
    "ContractError",
    "DataError",
    "Durable",
    "EdgeRNNError",
    "InferredContractWarning",
    "Model",
    "ModelError",
    "NonFiniteError",
    "Pool",
    "ProviderFallbackWarning",
    "RowsInteractWarning",
    "SnapshotError",
    "Stream",
    "StreamingError",
    "contract_of",
    "load",
    "open_session",
    "signature",
    "state_file_lock",
    "step_record",
]
