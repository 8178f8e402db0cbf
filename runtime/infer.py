"""A contract for an ONNX file edgernn did not write: from what the caller says, or inferred
from the graph's names and shapes.

Inference pairs each state input with the output whose name matches once words such as
``in``/``out``/``prev``/``next``/``new`` are removed (``h0`` ↔ ``hn``, ``state`` ↔
``stateN``, ``h_in`` ↔ ``h_out``) and whose shape agrees. The one input left is the data input,
the first output left is the data output.

Axes: a symbolic axis keeps its name (``batch``, ``sequence``); an axis with no name at all is
named by its place, ``input[1]``. The data input's first axis is the batch; a state's batch is
its symbolic axis. Every other axis of a frame must have a size: fixed in the file, or given by
the caller (``dims={"sequence": 576}`` or ``dims={"input[1]": 576}``; the runtime applies named
ones as ONNX Runtime free-dimension overrides, the file is never edited). Anything it cannot
decide is refused with an error saying what to pass.
"""

from __future__ import annotations

import re

import numpy as np

from edgernn import __version__
from edgernn.contract import DTYPES, FLOAT_DTYPES, Contract, Provenance, StateSpec, TensorSpec
from edgernn.errors import ModelError
from edgernn.runtime.metadata import IOInfo

_NOISE = re.compile(r"(^|_|\.)(in|out|input|output|prev|next|new|old|cur|current|t|t1)(?=$|_|\.)")


def _key(name: str, digits: bool = True) -> str:
    k = _NOISE.sub(r"\1", name.lower()).strip("_.")
    if digits:
        k = re.sub(r"(?<=[a-z])(0|n|_?\d+)$", "", k)      # h0 / hn / state1 -> h / state
    return k or name.lower()


def axis_names(info: IOInfo) -> list:
    """Sizes, symbolic names, and ``name[i]`` for axes that have neither."""
    return [d if isinstance(d, (int, str)) and d != "" else f"{info.name}[{i}]"
            for i, d in enumerate(info.shape)]


def _compatible(a: IOInfo, b: IOInfo) -> bool:
    if len(a.shape) != len(b.shape) or a.dtype != b.dtype:
        return False
    return all(not (isinstance(x, int) and isinstance(y, int)) or x == y
               for x, y in zip(a.shape, b.shape))


def _sized(shape: list, dims: dict, keep: set) -> list:
    """``shape`` with named axes given a size by ``dims`` (those in ``keep`` stay symbolic)."""
    return [dims.get(d, d) if isinstance(d, str) and d not in keep else d for d in shape]


def _pairs(inputs, outputs, states, free_in, by_in, by_out):
    if states is not None:
        pairs = list(states.items()) if isinstance(states, dict) else list(states)
        for i, o in pairs:
            if i not in by_in or o not in by_out:
                raise ModelError(f"state pair {i!r} -> {o!r} is not in the model; inputs are "
                                 f"{', '.join(by_in)}, outputs {', '.join(by_out)}")
        return pairs, "as given"
    pairs = []
    for o in outputs:
        # h0_out -> h0 before h0/hn -> h: per-layer states keep their numbers
        matches = [i for i in free_in if _key(i.name, False) == _key(o.name, False)
                   and _compatible(i, o)]
        if not matches:
            matches = [i for i in free_in if _key(i.name) == _key(o.name) and _compatible(i, o)]
        if len(matches) > 1:
            raise ModelError(f"output {o.name!r} could be the next value of any of "
                             f"{', '.join(m.name for m in matches)}; pass states={{input: "
                             f"output}} to say which (CLI: --state INPUT=OUTPUT)")
        if matches and matches[0].name not in {p[0] for p in pairs}:
            pairs.append((matches[0].name, o.name))
    return pairs, "inferred from names and shapes"


def infer_contract(inputs: list[IOInfo], outputs: list[IOInfo], states=None,
                   constants: dict | None = None, source: str = "",
                   dims: dict | None = None) -> tuple[Contract, str]:
    """A contract for a graph without one, and a sentence saying what was decided."""
    constants, dims = constants or {}, dims or {}
    where = source or "the model"
    unknown = [c for c in constants if c not in {i.name for i in inputs}]
    if unknown:
        raise ModelError(f"constants name input(s) {', '.join(unknown)} that the model does not "
                         f"have; its inputs are {', '.join(i.name for i in inputs)}")
    free_in = [i for i in inputs if i.name not in constants]
    by_in = {i.name: i for i in inputs}
    by_out = {o.name: o for o in outputs}
    pairs, how = _pairs(inputs, outputs, states, free_in, by_in, by_out)
    state_in = {p[0] for p in pairs}
    data_in = [i for i in free_in if i.name not in state_in]
    if len(data_in) != 1:
        names = ", ".join(f"{i.name} {axis_names(i)}" for i in data_in) or "none"
        raise ModelError(f"cannot tell the data input of {where}: candidates are {names}. Pass "
                         f"states={{input: output}} for the state pairs and constants={{name: "
                         f"value}} for inputs that stay fixed (CLI: --state IN=OUT, "
                         f"--constant NAME=VALUE)")
    data_out = [o for o in outputs if o.name not in {p[1] for p in pairs}]
    if not data_out:
        raise ModelError("every output is a state; the model has no data output to return")
    if not pairs:
        raise ModelError(f"found no state pairs in {where} (inputs {', '.join(by_in)}; outputs "
                         f"{', '.join(by_out)}): it does not look recurrent. Pass states={{input:"
                         f" output}} (CLI: --state IN=OUT) if it is")
    x = data_in[0]
    for t in (x, *(by_in[i] for i, _ in pairs), data_out[0], *(by_out[o] for _, o in pairs)):
        wanted = DTYPES if t is x else FLOAT_DTYPES
        if t.dtype not in wanted:
            raise ModelError(f"{t.name} is {t.dtype}; the runtime streams {'/'.join(wanted)} "
                             f"tensors there. Wrap the model so that it takes and gives those")
    x_shape = axis_names(x)
    batch = x_shape[0] if x_shape and isinstance(x_shape[0], str) else None
    graph = "chunk" if len(x_shape) >= 3 and isinstance(x_shape[1], str) else "step"
    specs = []
    for i, o in pairs:
        shape = axis_names(by_in[i])
        symbolic = [a for a, d in enumerate(shape) if isinstance(d, str)]
        at = next((a for a in symbolic if shape[a] == batch), symbolic[0] if symbolic else None)
        layout = ["state"] * len(shape)
        if at is not None:
            layout[at] = "batch"
            shape[at] = "batch"
        shape = _sized(shape, dims, set())
        specs.append(StateSpec(name=i, input=i, output=o, shape=shape, layout=layout,
                               dtype=by_in[i].dtype))
    x_shape = _sized(["batch" if d == batch else ("time" if graph == "chunk" and a == 1 else d)
                      for a, d in enumerate(x_shape)], dims, {"batch", "time"})
    y_shape = [("batch" if d == batch or (a == 0 and isinstance(d, str)) else d)
               for a, d in enumerate(axis_names(data_out[0]))]
    contract = Contract(
        graph=graph,
        inputs=[TensorSpec(x.name, x_shape, x.dtype)],
        outputs=[TensorSpec(o.name, y_shape if o is data_out[0] else axis_names(o),
                            o.dtype if o.dtype in DTYPES else "float32")
                 for o in data_out],
        states=specs,
        provenance=Provenance(edgernn_version=__version__, source=source or "external"))
    said = (f"state pairs {how}: " + ", ".join(f"{i} -> {o}" for i, o in pairs)
            + f"; data input {x.name} {x_shape}, output {data_out[0].name}"
            + (f"; constants {', '.join(constants)}" if constants else ""))
    return contract, said


def frame_axes_unknown(contract: Contract) -> list[str]:
    """Names of the data input's frame axes that have no size (neither fixed nor given)."""
    x = contract.inputs[0]
    start = 2 if contract.graph == "chunk" else 1
    return [d for d in x.shape[start:] if isinstance(d, str)]


def as_constant(value, dtype: str | None = None) -> np.ndarray:
    """A constant input's value as an array of the input's own dtype."""
    array = np.asarray(value)
    if dtype in DTYPES + ("bool",):
        array = array.astype(dtype)
    return np.ascontiguousarray(array)
