"""Reading and rewriting an artifact's embedded contract, never leaving a half-written file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import onnx

from edgernn.contract import CONTRACT_KEY, Contract
from edgernn.errors import ModelError
from edgernn.files import atomic_write_bytes


def read_proto(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist")
    try:
        return onnx.load(path)
    except Exception as exc:
        raise ModelError(f"{path} is not a readable ONNX file ({type(exc).__name__}); "
                         f"re-export it with 'edgernn export'") from None


def contract_in(proto: onnx.ModelProto, where: str = "the model") -> Contract:
    for entry in proto.metadata_props:
        if entry.key == CONTRACT_KEY:
            return Contract.from_json(entry.value)
    raise ModelError(f"{where} carries no edgernn contract; export it with 'edgernn export'")


def set_dims(value: onnx.ValueInfoProto, shape) -> None:
    """Declare ``shape`` on a graph input or output: ints fixed, strings symbolic."""
    dims = value.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dim = dims.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def portable_ir(proto: onnx.ModelProto) -> None:
    """The lowest IR version the file's opsets need, not the newest the onnx package writes:
    device runtimes lag (onnxruntime-web 1.30 reads IR 13 at most; onnx 1.23 writes 14), and
    nothing in an edgernn graph needs more than its opsets do."""
    need = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    proto.ir_version = min(proto.ir_version, max(need, 7))


def embed_contract(proto: onnx.ModelProto, contract: Contract) -> None:
    portable_ir(proto)
    kept = [(e.key, e.value) for e in proto.metadata_props if e.key != CONTRACT_KEY]
    del proto.metadata_props[:]
    for key, value in sorted(kept) + [(CONTRACT_KEY, contract.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def update_contract(path: str | Path, change: Callable[[Contract], Contract]) -> Contract:
    """Rewrite ``path`` with ``change(contract)`` embedded: atomically, weights untouched."""
    proto = read_proto(path)
    contract = change(contract_in(proto, str(path)))
    embed_contract(proto, contract)
    atomic_write_bytes(path, proto.SerializeToString(deterministic=True))
    return contract
