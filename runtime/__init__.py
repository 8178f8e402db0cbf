"""The device side of edgernn: load an exported model and stream it.

Imports numpy, onnxruntime and the standard library only, never torch or onnx.
"""

from edgernn.runtime.metadata import contract_of, open_session, signature
from edgernn.runtime.model import Model, load

__all__ = ["Model", "contract_of", "load", "open_session", "signature"]
