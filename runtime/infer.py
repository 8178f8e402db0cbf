"""A contract for an ONNX file edgernn did not write: from what the caller says, or inferred
from the graph's names and shapes.

Inference pairs each state input with the output whose name matches once words such as
``in``/``out``/``prev``/``next``/``new`` are removed (``h0`` ↔ ``hn``, ``state`` ↔
``stateN``, ``h_in`` ↔ ``h_out``) and whose shape agrees. The one input left is the data input,
the first output left is the data output. Anything it cannot decide is refused with an error
saying what to pass (``states=`` or ``constants=``).
"""

from __future__ import annotations

import re

import numpy as np

from edgernn import __version__
from edgernn.contract import Contract, Provenance, StateSpec, TensorSpec
from edgernn.errors import ModelError
from edgernn.runtime.metadata import IOInfo

_NOISE = re.compile(r"(^|_|\.)(in|out|input|output|prev|next|new|old|cur|current|t|t1)(?=$|_|\.)")


def _key(name: str) -> str:
    k = _NOISE.sub(r"\1", name.lower()).strip("_.")
    k = re.sub(r"(?<=[a-z])(0|n|_?\d+)$", "", k)          # h0 / hn / state1 -> h / state
    return k or name.lower()


def _dims(shape) -> list:
    return [d if isinstance(d, int) else (d or "batch") for d in shape]


def _compatible(a: IOInfo, b: IOInfo) -> bool:
    if len(a.shape) != len(b.shape) or a.dtype != b.dtype:
        return False
    return all(not (isinstance(x, int) and isinstance(y, int)) or x == y
               for x, y in zip(a.shape, b.shape))


def infer_contract(inputs: list[IOInfo], outputs: list[IOInfo], states=None,
                   constants: dict | None = None, source: str = "") -> tuple[Contract, str]:
    """A contract for a graph without one, and a sentence saying what was decided."""
    constants = constants or {}
    unknown = [c for c in constants if c not in {i.name for i in inputs}]
    if unknown:
        raise ModelError(f"constants name input(s) {', '.join(unknown)} that the model does not "
                         f"have; its inputs are {', '.join(i.name for i in inputs)}")
    free_in = [i for i in inputs if i.name not in constants]
    by_in = {i.name: i for i in inputs}
    by_out = {o.name: o for o in outputs}
    if states is not None:
        pairs = list(states.items()) if isinstance(states, dict) else list(states)
        for i, o in pairs:
            if i not in by_in or o not in by_out:
                raise ModelError(f"state pair {i!r} -> {o!r} is not in the model; inputs are "
                                 f"{', '.join(by_in)}, outputs {', '.join(by_out)}")
        how = "as given"
    else:
        pairs = []
        for o in outputs:
            matches = [i for i in free_in if _key(i.name) == _key(o.name) and _compatible(i, o)]
            if len(matches) > 1:
                raise ModelError(f"output {o.name!r} could be the next value of any of "
                                 f"{', '.join(m.name for m in matches)}; pass states={{input: "
                                 f"output}} to say which")
            if matches and matches[0].name not in {p[0] for p in pairs}:
                pairs.append((matches[0].name, o.name))
        how = "inferred from names and shapes"
    state_in = {p[0] for p in pairs}
    data_in = [i for i in free_in if i.name not in state_in]
    if len(data_in) != 1:
        names = ", ".join(i.name for i in data_in) or "none"
        raise ModelError(f"cannot tell the data input of {source or 'the model'}: candidates are "
                         f"{names}. Pass states={{input: output}} for the state pairs and "
                         f"constants={{name: value}} for inputs that stay fixed")
    data_out = [o for o in outputs if o.name not in {p[1] for p in pairs}]
    if not data_out:
        raise ModelError("every output is a state; the model has no data output to return")
    if not pairs:
        raise ModelError(f"found no state pairs in {source or 'the model'} (inputs "
                         f"{', '.join(by_in)}; outputs {', '.join(by_out)}): it does not look "
                         f"recurrent. Pass states={{input: output}} if it is")
    x = data_in[0]
    specs = []
    for i, o in pairs:
        shape = _dims(by_in[i].shape)
        sym = [a for a, d in enumerate(by_in[i].shape) if not isinstance(d, int)]
        layout = ["state"] * len(shape)
        if sym:
            layout[sym[0]] = "batch"
        specs.append(StateSpec(name=i, input=i, output=o, shape=shape, layout=layout,
                               dtype=by_in[i].dtype if by_in[i].dtype in ("float32", "float16")
                               else "float32"))
    x_shape = _dims(x.shape)
    graph = "chunk" if len(x.shape) >= 3 and not isinstance(x.shape[1], int) else "step"
    if graph == "chunk":
        x_shape[1] = "time"
    contract = Contract(
        graph=graph,
        inputs=[TensorSpec(x.name, x_shape, x.dtype if x.dtype in ("float32", "int64", "int32")
                           else "float32")],
        outputs=[TensorSpec(o.name, _dims(o.shape),
                            o.dtype if o.dtype in ("float32", "float16") else "float32")
                 for o in data_out],
        states=specs,
        provenance=Provenance(edgernn_version=__version__, source=source or "external"))
    said = (f"state pairs {how}: " + ", ".join(f"{i} -> {o}" for i, o in pairs)
            + f"; data input {x.name} {x.shape}, output {data_out[0].name}"
            + (f"; constants {', '.join(constants)}" if constants else ""))
    return contract, said


def as_constant(value) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(value))
