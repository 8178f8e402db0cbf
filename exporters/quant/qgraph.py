"""Facts about a graph before and after quantization (which weight matrices changed type), and
the fp16 conversion."""

from __future__ import annotations

import numpy as np
import onnx

from edgernn.cells import BY_ONNX_OP
from edgernn.contract import Quantization
from edgernn.exporters.graph import sort_nodes

FUSED = set(BY_ONNX_OP)            # ONNX's fused recurrent operators: LSTM, GRU, RNN
MATMUL = {"MatMul", "Gemm"}


def _weights(proto) -> dict[str, int]:
    """Float weight matrices of matrix products and recurrent ops: name -> elements."""
    inits = {t.name: t for t in proto.graph.initializer}
    out = {}
    for node in proto.graph.node:
        if node.op_type in MATMUL | FUSED:
            for name in node.input[1:3] if node.op_type in FUSED else node.input[1:2]:
                t = inits.get(name)
                if t is not None and len(t.dims) >= 2 and t.data_type == onnx.TensorProto.FLOAT:
                    out[name] = int(np.prod(t.dims))
    return out


def coverage(fp32, quantized, mode: str, calibration: str, options: dict) -> Quantization:
    """How many weight matrices, and what share of multiply-accumulates, became int8."""
    before = _weights(fp32)
    still_float = set(_weights(quantized))
    converted = {k: v for k, v in before.items() if k not in still_float}
    total = sum(before.values()) or 1
    return Quantization(mode=mode, weight_tensors=len(before), weight_tensors_int8=len(converted),
                        mac_share_int8=sum(converted.values()) / total, calibration=calibration,
                        options=options)


def fp16(src, dst) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # Recurrent operators stay fp32: ONNX Runtime has no fp16 CPU kernels for them (an fp16
    # LSTM crashed the CPU session here), and their weights are the state-carrying path.
    # Transposes stay fp32 too (they hold no weights): an fp16 Transpose between the casts
    # around a fused LSTM of a chunk graph crashes ONNX Runtime 1.32's session creation at
    # ORT_ENABLE_ALL (in its NchwcTransformer).
    model = convert_float_to_float16(onnx.load(src), keep_io_types=True,
                                     op_block_list=sorted(FUSED | {"Transpose"}))
    sort_nodes(model.graph)             # the converter appends its input casts at the end
    onnx.save(model, dst)
