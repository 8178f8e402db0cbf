"""Reading and rewriting an artifact's embedded contract, never leaving a half-written file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import onnx

from edgernn.contract import CONTRACT_KEY, Contract
from edgernn.errors import ModelError
from edgernn.exporters.graph import portable_ir
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
