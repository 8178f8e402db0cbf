"""torch → ONNX with the state as explicit, batch-major inputs and outputs, plus the contract.

Both torch exporters are supported: ``torchscript`` (``torch.onnx.export(dynamo=False)``) and
``dynamo`` (``torch.export`` based). The default is ``torchscript``: on the test matrix both give
the same parity, and it exports a default model in well under a second against several seconds
for dynamo (``python benchmarks/export_bench.py`` prints both).

Every file passes ``onnx.checker`` (full check) and strict shape inference, loads in ONNX
Runtime, is byte-for-byte deterministic, and is checked against PyTorch before it is written:
a file that fails parity is never written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from edgernn import __version__
from edgernn.choices import (DEFAULT_EXPORTER, DEFAULT_OPSET, DEFAULT_STEP_OPS,  # noqa: F401
                             DYNAMO_MIN_OPSET, EXPORT_TOLERANCE, EXPORTERS, MAX_OPSET,
                             MIN_OPSET)
from edgernn.contract import (GRAPH_KINDS, OP_FORMS, Contract, Parity, Provenance, StateSpec,
                              TensorSpec)
from edgernn.errors import ExportError
from edgernn.exporters.artifact import embed_contract
from edgernn.exporters.graph import set_dims
from edgernn.exporters.from_torch.fold import in_graph
from edgernn.exporters.from_torch.modules import decompose
from edgernn.exporters.checks.parity import RTOL, compare, drive, expected_states, random_splits
from edgernn.exporters.checks.report import bound
from edgernn.exporters.from_torch.source import Source, resolve
from edgernn.files import atomic_write_bytes


def _lean(module, opset):
    from edgernn.exporters.forms.lean import build_lean

    return build_lean(module, opset)


def _compact(module, opset):
    from edgernn.exporters.forms.compact import build_compact

    return build_compact(module, opset)


OWN_FORMS = {"lean": _lean, "compact": _compact}    # edgernn writes these graphs itself
OPS = OP_FORMS


@dataclass
class ExportResult:
    path: Path | None
    graph: str
    ops: str
    exporter: str
    opset: int
    bytes: int
    seconds: float
    max_abs_error: float
    op_types: list[str]
    contract: Contract = field(repr=False)
    model_bytes: bytes = field(repr=False, default=b"")
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path) if self.path else None, "graph": self.graph,
                "ops": self.ops, "exporter": self.exporter, "opset": self.opset,
                "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "max_abs_error": self.max_abs_error, "op_types": self.op_types,
                "notes": self.notes}


def export(model, out_path=None, *, example_input=None, graph: str = "step",
           ops: str | None = None, opset: int = DEFAULT_OPSET, exporter: str = DEFAULT_EXPORTER,
           tolerance: float = EXPORT_TOLERANCE, rtol: float = RTOL,
           state_layout=None) -> ExportResult:
    """Export ``model`` (an ``nn.Module`` following the state convention, or a checkpoint path)
    to ``out_path``; with ``out_path=None`` the bytes are returned in the result only.

    ``ops`` defaults to ``lean`` for edgernn's own networks' step graphs (one ONNX Runtime
    kernel per layer, which ``quantize`` makes one int8 kernel node: the fast path), else
    ``fused``; ``compact`` (one product per layer, state (batch, layers x hidden)) is the other
    form edgernn writes itself. ``state_layout`` gives each
    state's batch axis when it cannot be inferred (see
    :func:`~edgernn.exporters.from_torch.source.resolve`). Parity with PyTorch holds when every
    element is
    within ``tolerance + rtol * |value|``. ``opset`` is MIN_OPSET up to MAX_OPSET[exporter]."""
    _check_choice("graph", graph, GRAPH_KINDS)
    _check_choice("exporter", exporter, EXPORTERS)
    if not MIN_OPSET <= opset <= MAX_OPSET[exporter]:
        raise ExportError(f"opset {opset} is outside what the {exporter} exporter writes "
                          f"({MIN_OPSET}..{MAX_OPSET[exporter]}"
                          + ("; --exporter dynamo writes up to "
                             f"{MAX_OPSET['dynamo']})" if exporter == "torchscript" else ")")
                          + "; choose an opset in that range")
    start = time.perf_counter()
    notes: list[str] = []
    src = resolve(model, example_input, state_layout)
    if ops is None:
        ops = DEFAULT_STEP_OPS if (src.config is not None and graph == "step"
                                   and not src.bidirectional) else "fused"
    _check_choice("ops", ops, OPS)
    if src.bidirectional and graph != "sequence":
        raise ExportError(f"{src.name} is bidirectional: its output at a step depends on later "
                          f"steps, so it cannot run as a '{graph}' graph with state. Use "
                          f"--graph sequence (whole sequences in, no state out)")
    if graph == "chunk" and not src.per_step and src.example.shape[1] >= 2:
        raise ExportError(f"{src.name} returns one output for the whole input, not one per step "
                          f"(its output has no time axis: it keeps its shape when the input is "
                          f"one step shorter), so a chunk graph, which returns every step's "
                          f"output, cannot hold it. Export it as a step graph (--graph step) to "
                          f"stream it one frame a call, or have forward return every step's "
                          f"output")
    if ops != "fused" and graph != "step":
        raise ExportError(f"--ops {ops} writes the cell out for one step; it applies to "
                          f"step graphs, not '{graph}'. Use --graph step, or --ops fused")
    if ops in OWN_FORMS:
        if src.config is None:
            raise ExportError(f"--ops {ops} builds edgernn's own networks (a checkpoint or an "
                              f"edgernn model); for other modules use --ops fused or decomposed")
        proto, states = OWN_FORMS[ops](src.module, opset)
        exporter, cfg = "edgernn", src.config
        contract = _contract(src, graph, ops, exporter, proto, src.example[:, 0],
                             [cfg.output_size], False, states)
        try:
            max_err = _parity_check(src, proto, contract, tolerance, rtol)
        except _Rounding as exc:
            raise ExportError(f"{exc}; nothing was written") from None
        except ExportError as exc:
            raise ExportError(f"{exc}; nothing was written. Errors this far above float32 "
                              f"rounding point at edgernn's {ops} form: export with --ops "
                              f"fused, and report it") from None
    else:
        core = decompose(src.module).eval() if ops == "decomposed" else src.module
        module = src.graph(graph, core)
        args, names, dynamic = _signature(src, graph, module)
        proto, contract, max_err, exporter, notes = _convert(
            src, module, args, names, dynamic, graph, ops, opset, exporter, tolerance, rtol)
    max_err, scale = max_err
    contract = contract.with_changes(parity=[Parity(
        "torch", "max_abs", tolerance + rtol * scale, max_err,
        "random inputs at export (3 streams, 23 steps)", bound(tolerance, rtol, scale))])
    data = _finish(proto, contract)
    if out_path is not None:
        atomic_write_bytes(out_path, data)
    return ExportResult(Path(out_path) if out_path else None, graph, ops, exporter,
                        _opset(proto), len(data), time.perf_counter() - start, max_err,
                        sorted({n.op_type for n in proto.graph.node}), contract, data, notes)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ExportError(f"{name} {value!r} is unknown; expected one of {', '.join(choices)}")


def has_time_axis(module, args) -> bool:
    """Whether the graph's output follows the input's time axis (one output per step)."""
    x = args[0]
    if x.shape[1] < 2:
        return False
    with torch.no_grad():
        a = _y(module(*args))
        b = _y(module(x[:, :-1], *args[1:]))
    return a.dim() >= 2 and a.shape[1] == x.shape[1] and b.shape[1] == x.shape[1] - 1


def _y(out):
    return out if torch.is_tensor(out) else out[0]


def _signature(src: Source, graph: str, module):
    """Example arguments, names and dynamic axes of the graph."""
    x = src.example[:, 0] if graph == "step" else src.example
    batch = x.shape[0]
    states = [torch.zeros((batch, *s)) for s in src.state_shapes]
    state_in = [] if graph == "sequence" else src.state_names
    state_out = [f"{n}_out" for n in state_in]
    axes = {"x": {0: "batch"} if graph == "step" else {0: "batch", 1: "time"}}
    axes.update({n: {0: "batch"} for n in state_in + state_out})
    args = (x, *states) if state_in else (x,)
    axes["y"] = {0: "batch", 1: "time"} if graph != "step" and has_time_axis(module, args) \
        else {0: "batch"}
    return args, (["x", *state_in], ["y", *state_out]), axes


@contextlib.contextmanager
def _quiet():
    """torch's exporters talk on stdout and warn a lot; keep stdout for results."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _convert(src: Source, module, args, names, axes, graph, ops, opset, exporter, tolerance,
             rtol):
    """Convert with ``exporter`` and check parity; when either fails, the other exporter. One
    error naming both outcomes when neither gives a graph that computes what PyTorch computes
    (never a hint that sends the user from one exporter to the other and back)."""
    failures, notes = [], []
    for name in (exporter, *[e for e in EXPORTERS if e != exporter]):
        version = max(opset, DYNAMO_MIN_OPSET) if name == "dynamo" else opset
        try:
            proto = _to_onnx(module, args, names, axes, version, name)
            with torch.no_grad():
                y = _y(module(*args))
            time_out = 1 in axes["y"]
            contract = _contract(src, graph, ops, name, proto, args[0],
                                 list(y.shape[2 if time_out else 1:]), time_out,
                                 list(zip(src.state_names, src.state_shapes, src.layouts)))
            max_err = _parity_check(src, proto, contract, tolerance, rtol)
        except _Rounding as exc:                  # the other exporter rounds the same way
            raise ExportError(f"{exc}; nothing was written") from None
        except (_ConversionFailed, ExportError) as exc:
            failures.append(f"{name}: {exc}")
            continue
        if failures:
            notes.append(f"exported with {name}: {failures[0]}")
        return proto, contract, max_err, name, notes
    states = ", ".join(f"{n} {tuple([args[0].shape[0], *sh])} (batch on axis {a} in the module)"
                       for n, sh, a in zip(src.state_names, src.state_shapes, src.batch_axes))
    raise ExportError(f"neither torch exporter gives a faithful graph of {src.name} "
                      f"({' | '.join(failures)}). edgernn called forward(x, state) with x of shape "
                      f"{tuple(args[0].shape)}{' and ' + states if states else ''}; the module "
                      f"must compute with torch operations only, without Python branches on "
                      f"tensor values or conversions to numpy. If a state's batch axis is wrong "
                      f"there, pass state_layout=[...]. Nothing was written")


class _ConversionFailed(Exception):
    pass


class _Rounding(ExportError):
    """Parity missed only by float32 rounding: a tolerance set too tight, not a bug."""


def _to_onnx(module, args, names, axes, opset, exporter) -> onnx.ModelProto:
    inputs, outputs = names
    try:
        with _quiet(), torch.no_grad():
            if exporter == "torchscript":
                buf = io.BytesIO()
                torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs,
                                  dynamic_axes=axes, opset_version=opset, dynamo=False)
                return onnx.load_from_string(buf.getvalue())
            dims = {}
            shapes = {}
            for name in inputs:
                shapes[name] = {a: dims.setdefault(d, torch.export.Dim(d, min=1, max=1 << 20))
                                for a, d in axes[name].items()}
            # forward(x, *states): torch.export sees (x, states-tuple).
            by_position = (shapes[inputs[0]],)
            if len(inputs) > 1:
                by_position += (tuple(shapes[n] for n in inputs[1:]),)
            program = torch.onnx.export(module, args, None, input_names=inputs,
                                        output_names=outputs, opset_version=opset,
                                        dynamo=True, dynamic_shapes=by_position,
                                        verbose=False, optimize=True)
            return program.model_proto
    except Exception as exc:
        cause = exc.__cause__ or exc
        first = (str(cause).strip().splitlines() or [""])[0][:300]
        raise _ConversionFailed(f"{type(cause).__name__}: {first}") from None


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _contract(src: Source, graph, ops, exporter, proto, x, y_tail: list, time_out: bool,
              states: list) -> Contract:
    """The contract of a graph taking ``x`` and returning outputs of shape (batch[, time],
    *y_tail) and ``states`` as (name, shape without batch, axis names)."""
    lead = ["batch"] if graph == "step" else ["batch", "time"]
    y_lead = ["batch", "time"] if time_out else ["batch"]
    dtype = "int64" if x.dtype in (torch.int64, torch.int32) else "float32"
    states = [] if graph == "sequence" else [
        StateSpec(name=n, input=n, output=f"{n}_out", shape=_full_shape(shape), layout=layout)
        for n, shape, layout in states]
    ckpt, cfg = src.checkpoint, src.config
    meaning = {"classify_last": "class logits", "classify_step": "class logits per step",
               "regress": "forecast (denormalise with postprocessing)",
               "lm": "next-token logits"}.get(cfg.head if cfg else "", "model output")
    return Contract(
        graph=graph,
        inputs=[TensorSpec("x", lead + list(x.shape[len(lead):]), dtype,
                           "token ids" if dtype == "int64" else
                           "hops of samples in [-1, 1]" if ckpt and ckpt.audio is not None else
                           "frames (data units)")],
        outputs=[TensorSpec("y", y_lead + list(y_tail), "float32", meaning)],
        states=states,
        provenance=Provenance(edgernn_version=__version__,
                              torch_version=torch.__version__.split("+")[0],
                              opset=_opset(proto), exporter=f"{exporter}/{ops}",
                              weights_sha256=src.weights_sha256, source=src.name),
        task=ckpt.task if ckpt else "",
        head=cfg.head if cfg else "",
        model=cfg.to_dict() if cfg else {},
        preprocessing=in_graph(ckpt.preprocessing) if ckpt else None,
        postprocessing=in_graph(ckpt.postprocessing) if ckpt else None,
        labels=ckpt.labels if ckpt else None,
        vocabulary=ckpt.vocabulary if ckpt else None,
        tokenizer=ckpt.tokenizer if ckpt else None,
        dataset=ckpt.dataset if ckpt else None,
        difference=ckpt.difference if ckpt else None,
        audio=ckpt.audio.fbank.to_dict() if ckpt and ckpt.audio is not None else None,
    )


def _full_shape(shape) -> list:
    """A state's shape with its batch axis: given, or put first."""
    if isinstance(shape, int):
        return ["batch", shape]
    shape = list(shape)
    return shape if "batch" in shape else ["batch", *shape]


def _finish(proto: onnx.ModelProto, contract: Contract) -> bytes:
    """Embed the contract, strip what varies between runs, check, serialise."""
    proto.producer_name, proto.producer_version = "edgernn", __version__
    proto.doc_string = ""
    for node in proto.graph.node:
        node.doc_string = ""
    del proto.graph.value_info[:]       # optional hints; some pin dynamic axes to example sizes
    _declare_shapes(proto, contract)
    del proto.metadata_props[:]
    embed_contract(proto, contract)
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:
        raise ExportError(f"the exported graph fails the ONNX checker: {exc}") from None
    return proto.SerializeToString(deterministic=True)


def _declare_shapes(proto: onnx.ModelProto, contract: Contract) -> None:
    """Graph inputs and outputs declare the contract's shapes, symbolic axes by name.

    Exporters sometimes pin an axis to the example's size in the declared output shape while
    the computation itself is dynamic; the contract is the authority.
    """
    shapes = {t.name: t.shape for t in contract.inputs + contract.outputs}
    shapes.update({s.input: s.shape for s in contract.states})
    shapes.update({s.output: s.shape for s in contract.states})
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name in shapes:
            set_dims(value, shapes[value.name])


def _parity_check(src: Source, proto, contract: Contract, tolerance: float, rtol: float) -> float:
    """Drive the graph in ONNX Runtime and compare with PyTorch; raise if it differs."""
    from edgernn.runtime.model import Model
    from edgernn.runtime.metadata import open_session

    data = _finish(onnx.ModelProto.FromString(proto.SerializeToString()), contract)
    model = Model(open_session(data), contract, "", src.name)
    rng = np.random.default_rng(0)
    x = src.random_input(3, 23, rng)
    want_y, want_states = src.reference(x)
    want_states = expected_states(contract, src.state_names, want_states)
    chunks = random_splits(x.shape[1], rng) if contract.graph == "chunk" else None
    try:
        got_y, got_states = drive(model, x, chunks)
    except Exception as exc:  # onnxruntime's own errors: the graph does not run as exported
        raise ExportError(f"the exported {contract.graph} graph fails in ONNX Runtime on inputs "
                          f"of another size than the example "
                          f"({str(exc).splitlines()[0][:200]})") from None
    if want_y.ndim < got_y.ndim:                   # one output per sequence: the last step's
        got_y = got_y[:, -1]
    elif got_y.ndim < want_y.ndim:                 # a whole-sequence graph of a per-step
        want_y = want_y[:, -1]                     # reference: its last step's
    errors = [compare("y", "output", got_y, want_y, tolerance, rtol)]
    errors += [compare(s.name, "state", got_states[s.name], w, tolerance, rtol)
               for s, w in zip(contract.states, want_states)]
    failed = [e for e in errors if not e.passed]
    if failed:
        listing = "; ".join(e.describe() for e in failed)
        if all(np.isfinite(e.max_abs) and e.max_abs <= 1e-4 + 1e-5 * e.scale for e in failed):
            raise _Rounding(f"the exported {contract.graph} graph differs from PyTorch by float32 "
                            f"rounding only ({listing}); that is within 1e-4 + 1e-5 x |value|: "
                            f"raise --atol/--rtol")
        raise ExportError(f"the exported {contract.graph} graph does not compute what PyTorch "
                          f"computes ({listing}; --atol/--rtol set the tolerance)")
    return max(e.max_abs for e in errors), max(e.scale for e in errors)
