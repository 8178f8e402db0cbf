"""A loaded model: one ONNX Runtime session and its contract, shareable across threads.

A :class:`Model` holds no per-stream state: :meth:`Model.stream` makes a
:class:`~edgernn.runtime.stream.Stream` that does, :meth:`Model.pool` a
:class:`~edgernn.runtime.pool.Pool` of many.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from edgernn.contract import Contract, StateSpec, state_fingerprint
from edgernn.errors import ConfigError, DataError, ModelError, StreamingError
from edgernn.runtime import kernels as _kernels
from edgernn.runtime import providers as _providers
from edgernn.runtime.infer import as_constant, infer_contract
from edgernn.runtime.metadata import contract_of, open_session, signature

if TYPE_CHECKING:
    from edgernn.runtime.pool import Pool
    from edgernn.runtime.seq2seq import Seq2SeqModel
    from edgernn.runtime.stream import Stream


@dataclass
class TextLabel:
    label: str
    probabilities: dict          # label -> probability

    def to_dict(self) -> dict:
        return {"label": self.label, "probabilities": {k: round(v, 6) for k, v in
                                                       self.probabilities.items()}}


class InferredContractWarning(UserWarning):
    """The model carries no contract; the runtime inferred one (the message says what)."""


class Model:
    def __init__(self, session: ort.InferenceSession, contract: Contract, fingerprint: str,
                 source: str = "<bytes>", constants: dict | None = None,
                 profile: str | None = None):
        self.session = session
        self.contract = contract
        self.fingerprint = fingerprint
        self.accepted_fingerprints = (fingerprint,)     # what restore() takes as this model
        self.source = source
        self.profile = profile
        self.input = contract.inputs[0]
        self.output = contract.outputs[0]
        self.states: list[StateSpec] = list(contract.states)
        self.input_dtype = np.dtype(self.input.dtype)     # contract dtypes are numpy's names
        self.output_dtype = np.dtype(self.output.dtype)
        # Leading axes before a frame (batch, and time in a chunk graph) and before one
        # stream's output: a foreign file may have no batch axis at all.
        chunk = contract.graph == "chunk"
        self.batched = _is_batch(self.input.shape[0]) if self.input.shape else False
        self.x_lead = (2 if chunk else 1) if self.batched else 0
        self.y_lead = (2 if chunk else 1) if self.batched and self.output.shape and _is_batch(
            self.output.shape[0]) else 0
        self.constants = {k: as_constant(v) for k, v in (constants or {}).items()}
        self.constant_values = {k: ort.OrtValue.ortvalue_from_numpy(v)
                                for k, v in self.constants.items()}
        self.inferred: str = ""
        self.per_tensor_dynamic = False   # the graph scales activations per call (see load)
        self.kernels = False              # edgernn's int8 cell kernels run its ai.edgernn nodes
        self._output_names = [self.output.name] + [s.output for s in self.states]

    def __repr__(self) -> str:
        return (f"Model({self.source!r}, graph={self.graph!r}, states="
                f"{[s.name for s in self.states]}, providers={self.providers})")

    # ---------------------------------------------------------------- facts

    @property
    def graph(self) -> str:
        return self.contract.graph

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually got, best first."""
        return self.session.get_providers()

    @property
    def labels(self) -> list[str] | None:
        return self.contract.labels

    @property
    def vocabulary(self) -> str | None:
        return self.contract.vocabulary

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Fresh state for ``batch`` streams, batch on each state's batch axis."""
        out = {}
        for s in self.states:
            shape = [batch if i == s.batch_axis and "batch" in s.layout else d
                     for i, d in enumerate(s.shape)]
            if any(isinstance(d, str) for d in shape):
                raise ModelError(f"state {s.name} has a symbolic axis other than batch "
                                 f"({s.shape}); the runtime cannot size it")
            out[s.name] = np.full(shape, s.initial, dtype=np.dtype(s.dtype))
        return out

    # ---------------------------------------------------------------- running

    def run(self, x: np.ndarray, states: dict[str, np.ndarray] | None = None,
            extra: dict[str, np.ndarray] | None = None
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One plain session call on a batch: ``(y, new_states)``; ``states`` is not changed.
        ``x`` holds frames as the graph takes them (batch first, normalised); ``extra`` the
        graph's other data inputs by name (a step decoder's memory and mask)."""
        x = _checked(x, self.input, "x")
        feeds = {self.input.name: x, **self.constants, **self.checked_extra(extra)}
        if self.states:
            if states is None:
                states = self.initial_state(x.shape[0] if self.batched else 1)
            if not isinstance(states, dict):
                raise DataError(f"states must map state names to arrays, got "
                                f"{type(states).__name__}")
            for s in self.states:
                if s.name not in states:
                    raise DataError(f"states lacks {s.name!r}; this model's states are "
                                    f"{', '.join(t.name for t in self.states)}")
                feeds[s.input] = _checked(states[s.name], s, f"states[{s.name!r}]")
        try:
            outs = self.session.run(self._output_names, feeds)
        except Exception as exc:          # ONNX Runtime's own InvalidArgument / Fail
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise DataError(f"ONNX Runtime refused the call: {first}") from None
        return outs[0], {s.name: outs[1 + i] for i, s in enumerate(self.states)}

    def classify(self, text: str) -> TextLabel:
        """A text classifier's label for ``text``: tokenised with the contract's tokenizer,
        streamed from a fresh state (step and chunk graphs) or run whole (sequence graphs)."""
        from edgernn.sampling import softmax

        tokenizer = self.contract.tokenizer
        if tokenizer is None:
            raise ModelError(f"{self.source} has no tokenizer in its contract: classify() is for "
                             f"text classifiers (edgernn train --task classify --data "
                             f"texts.csv); stream frames with model.stream()")
        if self.contract.streamable:
            y = self.stream().feed_text(text)[-1]
        else:
            ids = tokenizer.encode(text)
            if not ids:
                raise DataError("the text has no tokens; pass some text")
            y = self.run(np.array([ids], np.int64))[0][0]
            y = y[-1] if y.ndim > 1 else y
        p = softmax(np.asarray(y, np.float64))
        i = int(np.argmax(p))
        names = self.labels or [str(k) for k in range(len(p))]
        return TextLabel(names[i], dict(zip(names, (float(v) for v in p))))

    def checked_extra(self, extra: dict | None) -> dict[str, np.ndarray]:
        """The contract's other data inputs (beyond ``inputs[0]``), checked like ``x``."""
        if not extra:
            return {}
        specs = {t.name: t for t in self.contract.inputs[1:]}
        unknown = sorted(set(extra) - set(specs))
        if unknown:
            raise DataError(f"this model has no data input(s) {', '.join(unknown)}; its other "
                            f"inputs are {', '.join(specs) or 'none'}")
        return {name: _checked(value, specs[name], name) for name, value in extra.items()}

    def stream(self, *, normalize: bool = True) -> Stream:
        """A new stream with its own state, starting fresh. Frames are in the data's own units;
        ``normalize=False`` says they are normalised already (the contract's preprocessing)."""
        from edgernn.runtime.stream import Stream

        self._require_streaming()
        return Stream(self, normalize=normalize)

    def pool(self, *, normalize: bool = True) -> Pool:
        """A pool that steps many independent streams in one batched call."""
        from edgernn.runtime.pool import Pool

        self._require_streaming()
        return Pool(self, normalize=normalize)

    def step_streams(self, streams, frames) -> np.ndarray:
        """One time step for each of ``streams`` (this model's Streams) in one batched call:
        ``frames[j]`` is ``streams[j]``'s frame; returns their outputs, (k, *out), each equal to
        stepping that stream alone. Streams stay separate objects (save, restore, step one
        alone); batch them whenever several have a frame at once."""
        from edgernn.runtime.pool import step_streams

        return step_streams(self, streams, frames)

    def _require_streaming(self) -> None:
        if not self.contract.streamable:
            raise StreamingError(f"this model is a '{self.graph}' graph (whole sequences, no "
                                 f"state out), so it cannot stream; export a step or chunk graph "
                                 f"of a unidirectional model, or call model.run(x) on whole "
                                 f"sequences")


def _is_batch(dim) -> bool:
    """An axis that holds streams: symbolic (any name), or fixed at one stream."""
    return isinstance(dim, str) or dim == 1


def _checked(value, spec, what: str) -> np.ndarray:
    """``value`` as an array of the spec's dtype, its rank and fixed sizes checked: one clear
    error instead of ONNX Runtime's."""
    a = np.asarray(value)
    want = spec.shape
    if a.ndim != len(want) or any(isinstance(d, int) and d != n for d, n in zip(want, a.shape)):
        raise DataError(f"{what} has shape {a.shape}; this model takes {spec.name!r} shaped "
                        f"{tuple(want)}")
    dtype = np.dtype(spec.dtype)
    if a.dtype != dtype:
        if a.dtype.kind not in "fiub" or (dtype.kind in "iu" and a.dtype.kind == "f"):
            raise DataError(f"{what} has dtype {a.dtype}; this model takes {dtype}")
        a = a.astype(dtype)
    return a


def max_threads() -> int:
    """More intra-op threads than 4x the cores only costs start-up time and memory."""
    return max(8, 4 * (os.cpu_count() or 1))


def _check_arguments(threads, providers, states, constants):
    """Arguments of :func:`load`, checked and normalised; each error names the argument."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(
            threads, (int, np.integer)) or threads < 1):
        raise ConfigError(f"threads must be a positive int (intra-op threads), got {threads!r}")
    if threads is not None and threads > max_threads():
        raise ConfigError(f"threads {threads} is far more than this machine's {os.cpu_count()} "
                          f"cores (ONNX Runtime starts every thread up front: minutes for "
                          f"thousands); use at most {max_threads()}, usually the core count")
    if isinstance(providers, str):
        providers = [providers]                 # one provider, not one per character
    if providers is not None:
        if not isinstance(providers, (list, tuple)) or not all(
                isinstance(p, str) or (isinstance(p, tuple) and len(p) == 2
                                       and isinstance(p[0], str) and isinstance(p[1], dict))
                for p in providers):
            raise ConfigError(f"providers must be a provider name or a list of names (or "
                              f"(name, options) pairs), got {providers!r}")
        providers = list(providers)
    if states is not None and not isinstance(states, (dict, list, tuple)):
        raise ConfigError(f"states must map state inputs to outputs ({{input: output}}), got "
                          f"{type(states).__name__}")
    if constants is not None and not isinstance(constants, dict):
        raise ConfigError(f"constants must map input names to values, got "
                          f"{type(constants).__name__}")
    return (None if threads is None else int(threads)), providers


def _check_graph(contract: Contract, session, source: str) -> None:
    """The contract must describe the graph it travels in: same inputs, same state shapes."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    wanted = [(contract.inputs[0].name, contract.inputs[0].shape)] + [
        (s.input, s.shape) for s in contract.states]
    for name, shape in wanted:
        have = inputs.get(name)
        if have is None or len(have) != len(shape) or any(
                isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(have, shape)):
            raise ModelError(f"{source}: its contract says input {name!r} is {shape} but the "
                             f"graph takes {have if have is not None else 'no such input'}; the "
                             f"file's metadata does not match its graph (edited by hand?). "
                             f"Export it again")
    missing = [s.output for s in contract.states if s.output not in outputs]
    missing += [o.name for o in contract.outputs if o.name not in outputs]
    if missing:
        raise ModelError(f"{source}: its contract names output(s) {', '.join(missing)} that the "
                         f"graph does not have; export it again")


def _check_dims(dims) -> dict:
    if dims is None:
        return {}
    if not isinstance(dims, dict):
        raise ModelError(f"dims is a mapping of axis name to size, got {type(dims).__name__}")
    for name, size in dims.items():
        if not isinstance(name, str) or isinstance(size, bool) or not isinstance(
                size, (int, np.integer)) or size < 1:
            raise ModelError(f"dims[{name!r}] = {size!r}: each axis name maps to a positive int")
    return {k: int(v) for k, v in dims.items()}


def _fingerprints(data: bytes, contract: Contract | None) -> tuple[str, str]:
    """Names the model a snapshot belongs to: its weights and state layout, not its metadata
    (recording parity or re-exporting as another graph kind keeps snapshots valid); and the
    name edgernn 0.x before canonical JSON gave it, which restores still accept (it hashed
    Python's repr of the shapes, which other runtimes had to imitate)."""
    if contract is not None and contract.provenance.weights_sha256:
        mode = contract.quantization.mode if contract.quantization else "fp32"
        parts = [contract.provenance.weights_sha256, mode]
        parts += [f"{s.name}:{s.shape}:{s.dtype}" for s in contract.states]
        legacy = hashlib.sha256("|".join(parts).encode()).hexdigest()
        return state_fingerprint(contract.provenance.weights_sha256, mode,
                                 contract.states), legacy
    whole = hashlib.sha256(data).hexdigest()
    return whole, whole


def load(model: str | os.PathLike | bytes, *, profile=None, providers: list | None = None,
         threads: int | None = None, states=None, constants: dict | None = None,
         dims: dict | None = None) -> Model | Seq2SeqModel:
    """Load an ONNX model (a path or its bytes) for streaming.

    ``profile`` (a device profile name or object) picks providers, threads and session settings;
    ``providers`` and ``threads`` override it. For a file without an edgernn contract, name the
    state pairs with ``states={input: output}``, fixed inputs with ``constants`` and the size of
    frame axes the file leaves open with ``dims`` (``{"sequence": 576}``, or ``{"input[1]":
    576}`` for an axis with no name); or let the runtime infer the states (it warns with what it
    inferred). Named axes are fixed with ONNX Runtime's free-dimension overrides.

    Either file of an exported encoder-decoder pair gives a
    :class:`~edgernn.runtime.seq2seq.Seq2SeqModel` (the other file is loaded from beside it).
    """
    loaded = _load_one(model, profile=profile, providers=providers, threads=threads,
                       states=states, constants=constants, dims=dims)
    if loaded.contract.seq2seq is not None and not loaded.inferred:
        from edgernn.runtime.seq2seq import open_pair

        path = None if isinstance(model, (bytes, bytearray)) else Path(model)
        return open_pair(loaded, path, lambda p: _load_one(p, profile=profile,
                                                           providers=providers, threads=threads))
    return loaded


def _load_one(model, *, profile=None, providers=None, threads=None, states=None, constants=None,
              dims=None) -> Model:
    threads, providers = _check_arguments(threads, providers, states, constants)
    if isinstance(model, (bytes, bytearray)):
        data, source = bytes(model), "<bytes>"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist"
                             + (" (it is a directory)" if path.is_dir() else ""))
        try:
            data, source = path.read_bytes(), str(path)
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    else:
        raise ConfigError(f"load() takes a path or the model's bytes, got "
                          f"{type(model).__name__}")
    prof = None
    if profile is not None:
        from edgernn.devices import get_profile
        from edgernn.devices.profiles import Profile

        if not isinstance(profile, (str, Profile)):
            raise ConfigError(f"profile must be a profile name, a profile file's path or a "
                              f"Profile, got {type(profile).__name__}")
        prof = get_profile(profile) if isinstance(profile, str) else profile
    options = prof.session_options() if prof else ort.SessionOptions()
    dims = _check_dims(dims)
    for name, size in dims.items():
        if not name.endswith("]"):
            options.add_free_dimension_override_by_name(name, size)
    threads = threads if threads is not None else (prof.threads if prof else None)
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    wanted = providers if providers is not None else (prof.provider_list() if prof else None)
    # from its path when it has one: ONNX Runtime finds external weight files beside the model
    # only then (from bytes it looks in the working directory)
    session = open_session(data if source == "<bytes>" else path, options,
                           _providers.resolve(wanted))
    contract = contract_of(session)
    said = ""
    if contract is None or states is not None:
        inputs, outputs = signature(session)
        types = {i.name: i.dtype for i in inputs}
        constants = {k: as_constant(v, types.get(k)) for k, v in (constants or {}).items()}
        contract, said = infer_contract(inputs, outputs, states, constants, source, dims)
        if states is None:
            warnings.warn(f"{source} carries no edgernn contract; {said}",
                          InferredContractWarning, stacklevel=3)
    elif constants or dims:
        raise ModelError("constants and dims are for models without an edgernn contract; this "
                         "one has its own")
    else:
        _check_graph(contract, session, source)
    fingerprint, legacy = _fingerprints(data, contract if not said else None)
    loaded = Model(session, contract, fingerprint, source, constants,
                   prof.name if prof else None)
    loaded.accepted_fingerprints = (fingerprint, legacy)
    loaded.inferred = said
    loaded.per_tensor_dynamic = any(op in data for op in _PER_TENSOR_DYNAMIC)
    loaded.kernels = _kernels.enabled() and _kernels.uses(data)
    if loaded.kernels:
        _probe_kernels(loaded, source)
    return loaded


def _probe_kernels(model: Model, source: str) -> None:
    """One step on a zero frame, for a file whose ``ai.edgernn`` nodes run edgernn's kernels:
    ONNX Runtime shows the kernels the shapes it knows while the session is created, and they
    refuse a file whose parts do not fit then; an axis the file leaves open is seen only at a
    call. This call makes that a refusal at load too, with the kernels' own words."""
    try:
        stream = model.stream()
        stream.step(np.zeros(stream.frame_shape, model.input_dtype))
    except Exception as exc:  # noqa: BLE001 - only the kernels' refusal is ours to report
        refused = _kernels.refusal(str(exc))
        if refused:
            raise ModelError(f"cannot load {source}: {refused}") from None


# Operators that quantize activations with one scale for the whole tensor, computed per call:
# a batch row's result then depends on its neighbours. Found by their op_type strings in the
# file's bytes (the device side has no onnx to parse the graph); a false hit costs one probe.
_PER_TENSOR_DYNAMIC = (b"DynamicQuantizeLinear", b"DynamicQuantizeLSTM",
                       b"DynamicQuantizeMatMul")
