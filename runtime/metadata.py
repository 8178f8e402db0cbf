"""Reading what an ONNX file declares (its contract and its graph signature), via onnxruntime."""

from __future__ import annotations

import os
from dataclasses import dataclass

import onnxruntime as ort

from edgernn.contract import CONTRACT_KEY, ORT_TYPES, Contract
from edgernn.errors import ModelError
from edgernn.runtime import kernels


@dataclass(frozen=True)
class IOInfo:
    name: str
    shape: list
    dtype: str




def open_session(model: str | os.PathLike | bytes, options: ort.SessionOptions | None = None,
                 providers: list | None = None) -> ort.InferenceSession:
    """An InferenceSession, with a clear error for a missing or corrupt file. edgernn's int8
    cell kernels are registered when this install has them (:mod:`edgernn.runtime.kernels`)."""
    if not isinstance(model, (bytes, bytearray)):
        model = os.fspath(model)
        if not os.path.isfile(model):
            raise ModelError(f"model file {model} does not exist")
    options = options or ort.SessionOptions()
    kernels.register(options)
    # ONNX Runtime's own log would print a refusal twice (once on stderr, once in our message):
    # its errors reach the caller as the exception below, so only fatal ones are logged
    options.log_severity_level = max(options.log_severity_level, 4)
    try:
        return ort.InferenceSession(model, sess_options=options,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / etc.
        where = "the model bytes" if isinstance(model, (bytes, bytearray)) else model
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        refused = kernels.refusal(str(exc))
        if refused:
            raise ModelError(f"cannot load {where}: {refused}") from None
        if "External data path" in first or "external data" in first.lower():
            raise ModelError(f"ONNX Runtime cannot load {where}: it keeps weights in a separate "
                             f"data file it cannot read ({first}). Keep that file beside the "
                             f"model, under the name the model gives it"
                             + (", or load the model from its path, not its bytes"
                                if where == "the model bytes" else "")) from None
        raise ModelError(f"ONNX Runtime cannot load {where}: it is not a valid ONNX model or is "
                         f"corrupt ({first}). Check that the file is complete and is an ONNX "
                         f"model (an edgernn artifact: export it again)") from None


def contract_of(session: ort.InferenceSession) -> Contract | None:
    """The embedded contract, or None for an ONNX file edgernn did not write."""
    text = session.get_modelmeta().custom_metadata_map.get(CONTRACT_KEY)
    return None if text is None else Contract.from_json(text)


def signature(session: ort.InferenceSession) -> tuple[list[IOInfo], list[IOInfo]]:
    def info(args):
        return [IOInfo(a.name, list(a.shape), ORT_TYPES.get(a.type, a.type)) for a in args]

    return info(session.get_inputs()), info(session.get_outputs())
