"""The device side of edgernn: load an exported model and stream it.

    model = edgernn.runtime.load("model.onnx")          # shareable across threads
    stream = model.stream()                             # owns one sequence's state
    y = stream.step(frame)                              # one time step
    ys = stream.feed(frames)                            # many steps in one call
    blob = stream.snapshot(); stream.restore(blob)      # state to bytes and back
    pool = model.pool(); a = pool.open()                # many streams, one batched call
    out = pool.step({a: frame})

Imports numpy, onnxruntime and the standard library only, never torch or onnx.
"""

from edgernn.runtime.metadata import contract_of, open_session, signature
from edgernn.runtime.model import InferredContractWarning, Model, load
from edgernn.runtime.pool import Pool
from edgernn.runtime.providers import ProviderFallbackWarning
from edgernn.runtime.stream import Stream

__all__ = [
    "InferredContractWarning",
    "Model",
    "Pool",
    "ProviderFallbackWarning",
    "Stream",
    "contract_of",
    "load",
    "open_session",
    "signature",
]
