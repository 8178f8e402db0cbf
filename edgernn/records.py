"""What an artifact records about where it came from and what it was checked to: its
provenance, the data a stage used, the parity it was validated to and its quantization; and
the field readers every part of the contract is validated with. Part of the contract
(:mod:`edgernn.contract` re-exports these names); pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

from edgernn.errors import ContractError

Dim = Union[int, str]  # a fixed size or a symbolic axis name such as "batch" or "time"

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
    trend: str = ""                    # forecast: what the trend test found and chose

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
                                           default=False),
                   trend=_expect(d, "trend", str, where, optional=True, default=""))


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
