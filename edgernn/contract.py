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
from typing import Any, Union

from edgernn.errors import ContractError
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
Dim = Union[int, str]  # a fixed size or a symbolic axis name such as "batch" or "time"


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


# ---------------------------------------------------------------------------- reading helpers

def _expect(obj: dict, key: str, types, where: str, *, optional: bool = False, default=None):
    if key not in obj:
        if optional:
            return default
        raise ContractError(f"contract field {where}.{key} is missing; re-export the model with "
                            f"this edgernn version to get a complete contract")
    value = obj[key]
    if optional and value is None:
        return default
    if isinstance(value, bool) and bool not in _as_tuple(types):
        raise ContractError(f"contract field {where}.{key} is a bool, expected {_names(types)}")
    if not isinstance(value, types):
        raise ContractError(f"contract field {where}.{key} is {type(value).__name__} "
                            f"({value!r:.60}), expected {_names(types)}")
    return value


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _names(types) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))


def _dims(obj: dict, key: str, where: str) -> list[Dim]:
    shape = _expect(obj, key, list, where)
    for i, d in enumerate(shape):
        if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and d < 0):
            raise ContractError(f"contract field {where}.{key}[{i}] is {d!r}; "
                                f"each dimension must be a non-negative int or an axis name")
    return list(shape)


def _choice(obj: dict, key: str, choices, where: str, **kw) -> str:
    value = _expect(obj, key, str, where, **kw)
    if value is not None and value not in choices:
        raise ContractError(f"contract field {where}.{key} is {value!r}, expected one of "
                            f"{', '.join(choices)}")
    return value


def _floats(obj: dict, key: str, where: str, *, optional=False) -> list[float] | None:
    values = _expect(obj, key, list, where, optional=optional)
    if values is None:
        return None
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ContractError(f"contract field {where}.{key}[{i}] is {v!r}, expected a number")
    return [float(v) for v in values]


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
class Provenance:
    """Where the artifact came from."""

    edgernn_version: str
    torch_version: str = ""
    opset: int = 0
    exporter: str = ""
    weights_sha256: str = ""
    source: str = ""

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Provenance":
        def text(key):
            return _expect(d, key, str, where, optional=True, default="")
        return cls(edgernn_version=_expect(d, "edgernn_version", str, where),
                   torch_version=text("torch_version"),
                   opset=_expect(d, "opset", int, where, optional=True, default=0),
                   exporter=text("exporter"), weights_sha256=text("weights_sha256"),
                   source=text("source"))


DATA_KINDS = ("builtin", "file")


@dataclass(frozen=True)
class DataRef:
    """Which data a stage used: a built-in generator or the user's file, and how much of it.

    Training records the whole data set (``split=""``, with ``splits`` giving the sequences of
    each part); validation, the quantize gate and calibration record the part they used
    (``split="test"``...), with its size. A file is named by its sha256, so a later stage can
    tell whether the file on disk is still the one the model was trained on.
    """

    kind: str                          # "builtin" or "file"
    name: str                          # the built-in data set, or the file's name
    path: str = ""                     # file: the path given at training time
    sha256: str = ""                   # file: hash of its bytes
    seed: int | None = None            # builtin: generator seed
    size: float | None = None          # builtin: generator scale
    split: str = ""                    # the part used ("train", "test", ...); "" for all
    sequences: int = 0
    steps: int = 0                     # valid time steps in all, padding excluded
    features: int = 0                  # values per frame (0 for token ids)
    feature_names: list[str] | None = None
    splits: dict = field(default_factory=dict)     # part -> sequences
    variable_length: bool = False

    def describe(self) -> str:
        """One line for tables and messages."""
        what = (f"built-in {self.name} (seed {self.seed})" if self.kind == "builtin"
                else f"{self.path or self.name} (sha256 {self.sha256[:12]})")
        if self.split:
            what += f", {self.split} split"
        if self.sequences:
            what += f": {self.sequences} sequence{'s' * (self.sequences != 1)}, {self.steps} steps"
        return what

    def part(self, split: str, sequences: int, steps: int) -> "DataRef":
        return replace(self, split=split, sequences=sequences, steps=steps, splits={})

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "DataRef":
        names = _expect(d, "feature_names", list, where, optional=True)
        if names is not None and not all(isinstance(v, str) for v in names):
            raise ContractError(f"contract field {where}.feature_names must be strings")
        size = _expect(d, "size", (int, float), where, optional=True)
        return cls(kind=_choice(d, "kind", DATA_KINDS, where), name=_expect(d, "name", str, where),
                   path=_expect(d, "path", str, where, optional=True, default=""),
                   sha256=_expect(d, "sha256", str, where, optional=True, default=""),
                   seed=_expect(d, "seed", int, where, optional=True),
                   size=None if size is None else float(size),
                   split=_expect(d, "split", str, where, optional=True, default=""),
                   sequences=_expect(d, "sequences", int, where, optional=True, default=0),
                   steps=_expect(d, "steps", int, where, optional=True, default=0),
                   features=_expect(d, "features", int, where, optional=True, default=0),
                   feature_names=names,
                   splits=_expect(d, "splits", dict, where, optional=True, default={}),
                   variable_length=_expect(d, "variable_length", bool, where, optional=True,
                                           default=False))


def _data_ref(d: dict, key: str, where: str) -> DataRef | None:
    value = _expect(d, key, dict, where, optional=True)
    return None if value is None else DataRef.from_dict(value, f"{where}.{key}")


@dataclass(frozen=True)
class Parity:
    """The parity an artifact was validated to: ``metric`` ≤ ``tolerance`` against ``reference``."""

    reference: str
    metric: str
    tolerance: float
    measured: float
    data: str = ""
    details: dict = field(default_factory=dict)
    dataset: DataRef | None = None      # the data it was measured on, when not random

    @property
    def passed(self) -> bool:
        return self.measured <= self.tolerance

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Parity":
        return cls(reference=_expect(d, "reference", str, where),
                   metric=_expect(d, "metric", str, where),
                   tolerance=float(_expect(d, "tolerance", (int, float), where)),
                   measured=float(_expect(d, "measured", (int, float), where)),
                   data=_expect(d, "data", str, where, optional=True, default=""),
                   details=_expect(d, "details", dict, where, optional=True, default={}),
                   dataset=_data_ref(d, "dataset", where))


@dataclass(frozen=True)
class Quantization:
    """How the weights (and activations) were quantized and how much of the model it covers."""

    mode: str
    weight_tensors: int = 0
    weight_tensors_int8: int = 0
    mac_share_int8: float = 0.0
    calibration: str = ""
    options: dict = field(default_factory=dict)
    calibration_dataset: DataRef | None = None

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Quantization":
        return cls(mode=_expect(d, "mode", str, where),
                   weight_tensors=_expect(d, "weight_tensors", int, where, optional=True,
                                          default=0),
                   weight_tensors_int8=_expect(d, "weight_tensors_int8", int, where,
                                               optional=True, default=0),
                   mac_share_int8=float(_expect(d, "mac_share_int8", (int, float), where,
                                                optional=True, default=0.0)),
                   calibration=_expect(d, "calibration", str, where, optional=True, default=""),
                   options=_expect(d, "options", dict, where, optional=True, default={}),
                   calibration_dataset=_data_ref(d, "calibration_dataset", where))


@dataclass(frozen=True)
class Contract:
    """What an edgernn ONNX file promises its runtime.

    ``dataset`` names the data the model was trained on (later stages resolve their data from
    it). ``difference``, when set, says the graph forecasts through differences: it keeps the
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
        )
