"""The model contract: everything the runtime needs to know, carried inside the ONNX file.

The exporter writes a :class:`Contract` into the model's ``metadata_props`` under
:data:`CONTRACT_KEY`; the runtime reads it back with :func:`Contract.from_json`. This module is
the only definition of that format. It is pure Python (no numpy, torch or onnx) so that both
sides can import it.

A contract is validated on read: a missing field, a value of the wrong type or an unknown
format version raises :class:`~edgernn.errors.ContractError` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edgernn.errors import ContractError
from edgernn.records import (  # noqa: F401  (part of the contract: re-exported from here)
    DATA_KINDS,
    DataRef,
    Dim,
    Parity,
    Provenance,
    Quantization,
    _choice,
    _data_ref,
    _dims,
    _expect,
    _floats,
)
from edgernn.vocab import Seq2SeqSpec, Vocabulary

CONTRACT_KEY = "edgernn.contract"
FORMAT_VERSION = 1

GRAPH_KINDS = ("step", "chunk", "sequence")
OP_FORMS = ("fused", "decomposed", "compact", "lean")   # how a step graph writes the cell
# The tensor dtypes a contract names, each once: numpy's name (the contract's), ONNX Runtime's
# type string, and Triton's name (config.pbtxt writes TYPE_<name>, the wire protocol <name>).
# Every table of dtypes in edgernn is derived from this one.
_DTYPE_NAMES = {"float32": ("tensor(float)", "FP32"), "float16": ("tensor(float16)", "FP16"),
                "float64": ("tensor(double)", "FP64"), "int64": ("tensor(int64)", "INT64"),
                "int32": ("tensor(int32)", "INT32")}
DTYPES = tuple(_DTYPE_NAMES)
FLOAT_DTYPES = tuple(d for d in DTYPES if d.startswith("float"))
ORT_TYPES = {ort: name for name, (ort, _) in _DTYPE_NAMES.items()}
TRITON_TYPES = {name: triton for name, (_, triton) in _DTYPE_NAMES.items()}


def canonical_json(value) -> bytes:
    """The one byte form of a JSON value that every runtime writes alike (sorted keys, no
    spaces, UTF-8): what fingerprints hash and snapshot headers hold. The web runtime writes
    it with ``JSON.stringify`` over sorted keys (devices/web/snapshot.js ``canonicalJSON``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def state_fingerprint(weights_sha256: str, quantization: str, states) -> str:
    """Names the model a snapshot belongs to: its weights, quantization mode and state layout
    (name, shape, dtype of each state), as sha256 of their canonical JSON."""
    import hashlib

    return hashlib.sha256(canonical_json({
        "weights": weights_sha256, "quantization": quantization,
        "states": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype}
                   for s in states]})).hexdigest()


# ---------------------------------------------------------------------------- the dataclasses

@dataclass(frozen=True)
class TensorSpec:
    """A data input or output of the graph."""

    name: str
    shape: list[Dim]
    dtype: str = "float32"
    meaning: str = ""

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "TensorSpec":
        return cls(name=_expect(d, "name", str, where), shape=_dims(d, "shape", where),
                   dtype=_choice(d, "dtype", DTYPES, where),
                   meaning=_expect(d, "meaning", str, where, optional=True, default=""))


@dataclass(frozen=True)
class StateSpec:
    """One recurrent state tensor: fed in as ``input``, read back from ``output``.

    ``layout`` names the axes of ``shape``; edgernn's graphs are batch-major
    (``["batch", "layers_x_directions", "hidden"]``) so that streams stack on axis 0.
    """

    name: str
    input: str
    output: str
    shape: list[Dim]
    layout: list[str]
    dtype: str = "float32"
    initial: float = 0.0

    @property
    def batch_axis(self) -> int:
        return self.layout.index("batch") if "batch" in self.layout else 0

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "StateSpec":
        spec = cls(name=_expect(d, "name", str, where), input=_expect(d, "input", str, where),
                   output=_expect(d, "output", str, where), shape=_dims(d, "shape", where),
                   layout=[str(a) for a in _expect(d, "layout", list, where)],
                   dtype=_choice(d, "dtype", DTYPES, where),
                   initial=float(_expect(d, "initial", (int, float), where, optional=True,
                                         default=0.0)))
        if len(spec.layout) != len(spec.shape):
            raise ContractError(f"contract field {where}.layout has {len(spec.layout)} axes but "
                                f"shape has {len(spec.shape)}")
        return spec


@dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` per feature (outputs: ``y * std + mean``).

    ``in_graph``: the graph applies it itself (folded into its first and last weights), so
    frames go in and outputs come out in the data's own units; otherwise the runtime applies it
    around the graph (files from before edgernn folded it)."""

    mean: list[float]
    std: list[float]
    in_graph: bool = False

    # The arithmetic, in one place (numpy imported here only: the rest of the contract is
    # plain data). Callers decide whether the graph already applies it (``in_graph``).

    def arrays(self):
        """``(mean, std)`` as float32 arrays."""
        import numpy as np

        return np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)

    def apply(self, x):
        """``(x - mean) / std`` as contiguous float32."""
        import numpy as np

        mean, std = self.arrays()
        return np.ascontiguousarray((x - mean) / std, dtype=np.float32)

    def invert(self, y):
        """``y * std + mean``: normalised values back in the data's units."""
        import numpy as np

        mean, std = self.arrays()
        return np.asarray(y) * std + mean

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Normalization":
        norm = cls(mean=_floats(d, "mean", where), std=_floats(d, "std", where),
                   in_graph=_expect(d, "in_graph", bool, where, optional=True, default=False))
        if len(norm.mean) != len(norm.std):
            raise ContractError(f"contract field {where}: mean has {len(norm.mean)} values, std "
                                f"has {len(norm.std)}; they must match")
        if any(s <= 0 for s in norm.std):
            raise ContractError(f"contract field {where}.std holds a value <= 0")
        return norm


@dataclass(frozen=True)
class Contract:
    """What an edgernn ONNX file promises its runtime.

    ``dataset`` names the data the model was trained on (later stages resolve their data from
    it). ``audio``, when set, says the graph takes hops of samples in [-1, 1] and computes the
    log-mel features itself with these options (:class:`edgernn.frontend.Fbank`), the window's
    overlap kept as the state ``audio_tail``. ``difference``, when set, says the graph
    forecasts through differences: it keeps the
    previous frame as one more state, feeds the network the change since that frame
    (normalised with these statistics) and returns the next *level*, so callers and runtimes
    see levels and need nothing extra.
    """

    graph: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    states: list[StateSpec]
    provenance: Provenance
    task: str = ""
    head: str = ""
    model: dict = field(default_factory=dict)
    preprocessing: Normalization | None = None
    postprocessing: Normalization | None = None
    labels: list[str] | None = None
    vocabulary: str | None = None
    parity: list[Parity] = field(default_factory=list)
    quantization: Quantization | None = None
    dataset: DataRef | None = None          # what the model was trained on
    difference: Normalization | None = None  # the graph models differences (see below)
    seq2seq: Seq2SeqSpec | None = None       # one graph of an encoder-decoder pair
    tokenizer: Vocabulary | None = None      # texts to token ids (text classifiers)
    audio: dict | None = None                # the graph's front end: edgernn.frontend.Fbank
    version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.graph not in GRAPH_KINDS:
            raise ContractError(f"graph kind {self.graph!r} is unknown; expected one of "
                                f"{', '.join(GRAPH_KINDS)}")
        if self.graph == "sequence" and self.states:
            raise ContractError("a 'sequence' graph carries no state; found "
                                f"{len(self.states)} state(s)")
        if not self.inputs or not self.outputs:
            raise ContractError("a contract needs at least one input and one output")
        classes = self.outputs[0].shape[-1] if self.outputs[0].shape else None
        if self.labels is not None and isinstance(classes, int) and len(self.labels) != classes:
            raise ContractError(f"labels has {len(self.labels)} names but output "
                                f"{self.outputs[0].name!r} has {classes} classes; give one "
                                f"name per class")

    @property
    def streamable(self) -> bool:
        return self.graph in ("step", "chunk")

    def state(self, name: str) -> StateSpec:
        for s in self.states:
            if name in (s.name, s.input, s.output):
                return s
        raise ContractError(f"no state named {name!r}; this model's states are "
                            f"{', '.join(s.name for s in self.states) or 'none'}")

    def with_changes(self, **changes) -> "Contract":
        return replace(self, **changes)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        # Sorted keys and fixed separators: the same contract always gives the same bytes,
        # which keeps exported files deterministic.
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Contract":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ContractError(f"the contract is not valid JSON ({exc}); the file's metadata "
                                f"was damaged: re-export the model") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> "Contract":
        if not isinstance(data, dict):
            raise ContractError(f"a contract is a JSON object, got {type(data).__name__}")
        version = _expect(data, "version", int, "contract")
        if version > FORMAT_VERSION:
            raise ContractError(f"this contract has format version {version}, newer than the "
                                f"{FORMAT_VERSION} this edgernn reads; upgrade edgernn "
                                f"(pip install -U edgernn)")
        if version < 1:
            raise ContractError(f"contract format version {version} is not valid (expected 1)")
        where = "contract"

        def many(key, spec_cls, optional=False):
            items = _expect(data, key, list, where, optional=optional, default=[])
            out = []
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ContractError(f"contract field {key}[{i}] is {type(item).__name__}, "
                                        f"expected an object")
                out.append(spec_cls.from_dict(item, f"{key}[{i}]"))
            return out

        def one(key, spec_cls):
            value = _expect(data, key, dict, where, optional=True)
            return None if value is None else spec_cls.from_dict(value, key)

        provenance = _expect(data, "provenance", dict, where)
        labels = _expect(data, "labels", list, where, optional=True)
        if labels is not None and not all(isinstance(v, str) for v in labels):
            raise ContractError("contract field labels must be a list of strings")
        return cls(
            version=version,
            graph=_choice(data, "graph", GRAPH_KINDS, where),
            inputs=many("inputs", TensorSpec),
            outputs=many("outputs", TensorSpec),
            states=many("states", StateSpec, optional=True),
            provenance=Provenance.from_dict(provenance, "provenance"),
            task=_expect(data, "task", str, where, optional=True, default=""),
            head=_expect(data, "head", str, where, optional=True, default=""),
            model=_expect(data, "model", dict, where, optional=True, default={}),
            preprocessing=one("preprocessing", Normalization),
            postprocessing=one("postprocessing", Normalization),
            labels=labels,
            vocabulary=_expect(data, "vocabulary", str, where, optional=True),
            parity=many("parity", Parity, optional=True),
            quantization=one("quantization", Quantization),
            dataset=_data_ref(data, "dataset", where),
            difference=one("difference", Normalization),
            seq2seq=one("seq2seq", Seq2SeqSpec),
            tokenizer=one("tokenizer", Vocabulary),
            audio=_audio(data, where),
        )


def _audio(data: dict, where: str) -> dict | None:
    """The front end's options, checked as :class:`edgernn.frontend.Fbank` checks them."""
    from edgernn.errors import ConfigError
    from edgernn.frontend import Fbank

    value = _expect(data, "audio", dict, where, optional=True)
    if value is None:
        return None
    try:
        return Fbank.from_dict(value).to_dict()
    except (ConfigError, TypeError) as exc:
        raise ContractError(f"{where}: audio: {exc}") from None
