"""A Triton Inference Server model repository from an edgernn artifact (or a foreign stateful
ONNX file, given its state pairs).

Two flavours (``backend``):

- ``onnxruntime``: the ONNX file and a ``config.pbtxt`` whose sequence batcher keeps each
  sequence's state inside the server (implicit ``state`` entries from the contract: names,
  dtypes, dims without the batch axis, zero initial state, so a sequence's START begins from
  it). What a production Triton with the ONNX Runtime backend (and a GPU) loads. Triton pairs
  input and output states by their sorted names; names whose orders differ are renamed in the
  repository's copy of the file.
- ``python``: the ONNX file and a ``model.py`` that runs :mod:`edgernn.runtime` (one pool per
  model instance, one batched call per Triton batch); the sequence batcher's START, END and
  CORRID controls tell it which stream each request belongs to. For servers without the ONNX
  Runtime backend.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from edgernn.contract import CONTRACT_KEY, TRITON_TYPES, Contract
from edgernn.errors import ConfigError, StreamingError

BACKENDS = ("python", "onnxruntime")
STRATEGIES = ("oldest", "direct")

MODEL_PY = '''"""Triton Python-backend model written by edgernn: streams with edgernn.runtime."""

from edgernn.serving.triton_model import TritonPythonModel  # noqa: F401
'''


@dataclass(frozen=True)
class Options:
    name: str = "edgernn"
    backend: str = "python"
    max_batch_size: int = 64
    strategy: str = "oldest"
    idle_seconds: float = 60.0
    instances: int = 1
    kind: str = "cpu"                      # instance kind: cpu or gpu
    queue_delay_us: int = 100               # oldest: how long to wait to fill a batch

    def check(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is unknown; expected one of "
                              f"{', '.join(BACKENDS)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy {self.strategy!r} is unknown; expected oldest or direct")
        if self.kind not in ("cpu", "gpu"):
            raise ConfigError(f"instance kind {self.kind!r} is unknown; expected cpu or gpu")
        for name in ("max_batch_size", "instances"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"model name {self.name!r} may hold letters, digits, - and _")
        if self.idle_seconds <= 0:
            raise ConfigError("the idle timeout must be > 0 seconds")


def _dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _tensor(name: str, dtype: str, dims) -> str:
    """One tensor of config.pbtxt. A tensor of one number per stream ([batch]) is [batch, 1]
    to Triton (it needs dims) and reshaped to [batch] for the model."""
    shape = f"dims: {_dims(dims)}" if dims else "dims: [1] reshape: { shape: [ ] }"
    return f'  {{ name: "{name}" data_type: TYPE_{TRITON_TYPES[dtype]} {shape} }}'


def _frame_dims(contract: Contract, what) -> list[int]:
    dims = [d for d in what.shape[1:]]
    if any(isinstance(d, str) for d in dims):
        raise ConfigError(f"{what.name} has axes of open size {what.shape}; Triton needs fixed "
                          f"frame sizes: load it with dims= and re-export, or give a step graph")
    return dims


def config_text(contract: Contract, options: Options, states: list | None = None) -> str:
    """The ``config.pbtxt`` (Triton's text protobuf) for ``contract``."""
    if contract.graph != "step":
        raise ConfigError(f"Triton's sequence batcher sends one step per request: export a step "
                          f"graph, edgernn export --graph step (this one is '{contract.graph}')")
    x, y = contract.inputs[0], contract.outputs[0]
    lines = [f'name: "{options.name}"', f'backend: "{options.backend}"',
             f"max_batch_size: {options.max_batch_size}",
             "input [", _tensor(x.name, x.dtype, _frame_dims(contract, x)), "]",
             "output [", _tensor(y.name, y.dtype, _frame_dims(contract, y)), "]",
             "sequence_batching {",
             f"  max_sequence_idle_microseconds: {int(options.idle_seconds * 1e6)}"]
    if options.strategy == "oldest":
        lines += ["  oldest {", f"    max_candidate_sequences: {options.max_batch_size * 16}",
                  f"    preferred_batch_size: [ {options.max_batch_size} ]",
                  f"    max_queue_delay_microseconds: {options.queue_delay_us}", "  }"]
    else:
        lines += ["  direct { }"]
    if options.backend == "python":
        lines += ["  control_input [",
                  '    { name: "START" control [ { kind: CONTROL_SEQUENCE_START '
                  "int32_false_true: [ 0, 1 ] } ] },",
                  '    { name: "END" control [ { kind: CONTROL_SEQUENCE_END '
                  "int32_false_true: [ 0, 1 ] } ] },",
                  '    { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID '
                  "data_type: TYPE_UINT64 } ] }", "  ]"]
    else:
        lines += ["  state ["]
        for i, (s, (inp, out)) in enumerate(zip(contract.states, states)):
            if s.batch_axis != 0:
                raise ConfigError(f"state {s.name} keeps its batch on axis {s.batch_axis}; "
                                  f"Triton's implicit state puts it first. Export the compact "
                                  f"or lean step graph (edgernn export --ops lean) for this "
                                  f"backend")
            if s.initial != 0.0:
                raise ConfigError(f"state {s.name} starts at {s.initial}, not zero; Triton's "
                                  f"generated initial state here is zeros")
            dims = _dims(s.shape[1:])
            lines += ["    {", f'      input_name: "{inp}"', f'      output_name: "{out}"',
                      f"      data_type: TYPE_{TRITON_TYPES[s.dtype]}", f"      dims: {dims}",
                      "      initial_state {", f"        data_type: TYPE_{TRITON_TYPES[s.dtype]}",
                      f"        dims: {dims}", "        zero_data: true",
                      f'        name: "zeros_{s.name}"', "      }",
                      "    }" + ("," if i < len(contract.states) - 1 else "")]
        lines += ["  ]"]
    lines += ["}", "instance_group [",
              f"  {{ count: {options.instances} kind: KIND_{options.kind.upper()} }}", "]"]
    if options.backend == "python":
        idle = f'{{ string_value: "{options.idle_seconds}" }}'
        lines += ["parameters [", f'  {{ key: "idle_seconds" value: {idle} }}', "]"]
    return "\n".join(lines) + "\n"


def sorted_state_names(contract: Contract) -> list[tuple[str, str]]:
    """(input, output) names for Triton's implicit state: as the file has them when sorting
    inputs and outputs gives the same pairing, otherwise ``sNN_in``/``sNN_out``."""
    pairs = [(s.input, s.output) for s in contract.states]
    by_in = sorted(range(len(pairs)), key=lambda i: pairs[i][0])
    by_out = sorted(range(len(pairs)), key=lambda i: pairs[i][1])
    if by_in == by_out:
        return pairs
    return [(f"s{i:02d}_in", f"s{i:02d}_out") for i in range(len(pairs))]


def write_repository(model_path, out_dir, options: Options, *, load_kwargs=None,
                     force: bool = False) -> Path:
    """Write ``out_dir/<name>/{config.pbtxt, 1/model.onnx[, 1/model.py]}``; returns the model
    folder. ``load_kwargs`` (states, constants, dims) describe a file without a contract.

    The model folder is written whole and swapped in at once: no file of an earlier model of
    that name lingers. A model folder that already holds files is replaced only with
    ``force``; other models in the repository are never touched."""
    import warnings

    from edgernn.files import atomic_folder, holds_files
    from edgernn.runtime import InferredContractWarning, load
    from edgernn.runtime.pool import check_poolable
    from edgernn.runtime.seq2seq import refuse_seq2seq

    options.check()
    model_path = Path(model_path)
    folder = Path(out_dir) / options.name
    if holds_files(folder) and not force:
        raise ConfigError(f"{folder} already holds a model; pass --force to replace that "
                          f"folder whole, or choose another --name or repository")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferredContractWarning)
        model = load(model_path, **(load_kwargs or {}))
    refuse_seq2seq(model, "a Triton repository")
    contract = model.contract
    try:
        check_poolable(model)
    except StreamingError as exc:
        raise ConfigError(f"Triton batches the frames of its sequences: {exc}") from None
    data = model_path.read_bytes()
    _check_weights_inside(data, model_path)
    states = None
    if options.backend == "onnxruntime":
        _check_for_onnxruntime(model, load_kwargs)
        if any(_leading(s) for s in contract.states):
            data, contract = batch_first(data, contract)
        states = sorted_state_names(contract)
        if states != [(s.input, s.output) for s in contract.states]:
            data = _renamed(data, contract, states)
    text = config_text(contract, options, states)
    with atomic_folder(folder) as new:
        version = new / "1"
        version.mkdir()
        (version / "model.onnx").write_bytes(data)
        if options.backend == "python":
            (version / "model.py").write_text(MODEL_PY)
            if load_kwargs:
                (version / "load.json").write_text(json.dumps(load_kwargs))
        (new / "config.pbtxt").write_text(text)
    return folder


def _check_weights_inside(data: bytes, path: Path) -> None:
    """The repository gets model.onnx alone: weights kept in a separate file would be missing
    there, and the model would fail to load in the server."""
    import onnx

    proto = onnx.load_from_string(data)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise ConfigError(f"{path} keeps its weights in a separate data file, which a Triton "
                          f"repository would not hold; save one file with the weights inside "
                          f"(python -c \"import onnx; onnx.save(onnx.load('{path.name}'), "
                          f"'whole.onnx')\") and serve that")


def _check_for_onnxruntime(model, load_kwargs) -> None:
    pre = model.contract.preprocessing
    if pre is not None and not pre.in_graph:
        raise ConfigError("this file normalises its frames outside the graph (an older "
                          "export); Triton would feed them raw. Export it again with this "
                          "edgernn (normalisation inside the graph), or use --backend python")
    if load_kwargs and load_kwargs.get("constants"):
        raise ConfigError("constant inputs are not sent by Triton's sequence batcher; use "
                          "--backend python for a file that needs them")


def _leading(state) -> bool:
    """A state kept as (1, batch, ...) (the lean step graph's, in ONNX Runtime's recurrent
    kernels' own layout): the batch is not its first axis, but only a size-one axis is before it."""
    return state.batch_axis == 1 and state.shape[0] == 1


def batch_first(data: bytes, contract: Contract) -> tuple[bytes, Contract]:
    """The file with each (1, batch, ...) state fed and returned as (batch, ...), Triton's
    implicit-state layout: an ``Unsqueeze`` after the state input and a ``Squeeze`` before the
    state output (the same numbers; the contract says so too)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(data)
    g = proto.graph
    axes = "edgernn_batch_first_axis0"
    g.initializer.append(numpy_helper.from_array(np.array([0], np.int64), axes))
    first, last, changed = [], [], []
    for s in contract.states:
        if not _leading(s):
            changed.append(s)
            continue
        lead_in, lead_out = f"{s.input}__lead", f"{s.output}__lead"
        rename = {s.input: lead_in, s.output: lead_out}    # a layer above reads the output too
        for node in g.node:
            node.input[:] = [rename.get(n, n) for n in node.input]
            node.output[:] = [rename.get(n, n) for n in node.output]
        first.append(helper.make_node("Unsqueeze", [s.input, axes], [lead_in]))
        last.append(helper.make_node("Squeeze", [lead_out, axes], [s.output]))
        for value in list(g.input) + list(g.output):
            if value.name in (s.input, s.output):
                dims = value.type.tensor_type.shape.dim
                del dims[0]
        changed.append(replace(s, shape=list(s.shape[1:]), layout=list(s.layout[1:])))
    nodes = first + list(g.node) + last
    del g.node[:]
    g.node.extend(nodes)
    contract = contract.with_changes(states=changed)
    for prop in proto.metadata_props:
        if prop.key == CONTRACT_KEY:
            prop.value = contract.to_json()
    return proto.SerializeToString(), contract


def _renamed(data: bytes, contract: Contract, names) -> bytes:
    """The file with its state inputs and outputs renamed (Triton's sorted-name pairing)."""
    import onnx

    proto = onnx.load_from_string(data)
    rename = {}
    for s, (inp, out) in zip(contract.states, names):
        rename[s.input], rename[s.output] = inp, out
    for node in proto.graph.node:
        for seq in (node.input, node.output):
            for k, name in enumerate(seq):
                seq[k] = rename.get(name, name)
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = rename.get(value.name, value.name)
    for prop in proto.metadata_props:        # an edgernn file's contract names them too
        if prop.key == CONTRACT_KEY:
            prop.value = contract.with_changes(states=[
                replace(s, input=inp, output=out)
                for s, (inp, out) in zip(contract.states, names)]).to_json()
    return proto.SerializeToString()


def copy_backend(python_backend: Path, stub: Path, out: Path) -> Path:
    """A backend folder for a tritonserver without a Python install of its own:
    ``out/python/`` with the backend library, its utilities and the stub for this Python."""
    target = out / "python"
    target.mkdir(parents=True, exist_ok=True)
    for f in python_backend.iterdir():
        if f.is_file():
            shutil.copy2(f, target / f.name)
    shutil.copy2(stub, target / "triton_python_backend_stub")
    return out
