"""The device side of edgernn: load an exported model and stream it.

Imports numpy, onnxruntime and the standard library only, never torch or onnx.
"""

from edgernn.runtime.metadata import contract_of, open_session, signature

__all__ = ["contract_of", "open_session", "signature"]
