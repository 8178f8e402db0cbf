"""What a task is (a kind of problem: loss, metric, baseline) and the data it runs on.

A *task* (``classify``, ``forecast``, ``charlm``) knows its head, loss, metric and baseline. A
*data set* is where the sequences come from: a built-in generator or the user's file, named by
a :class:`~edgernn.contract.DataRef` that every later stage can resolve again. Tasks are
numpy-only apart from :meth:`Task.loss`, so the metric of an ONNX artifact is computed by the
very same code as the metric of the PyTorch model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.contract import DataRef, Normalization
from edgernn.csvio import read_text  # noqa: F401  (the one text reader, re-exported)
from edgernn.errors import DataError


@dataclass
class Split:
    x: np.ndarray                        # (N, T, F) float frames, or (N, T) int64 token ids
    y: np.ndarray                        # targets, shaped by the task
    lengths: np.ndarray | None = None    # (N,) valid steps of each sequence; None: all T
    start: int = 0                       # steps before this are context: fed, never scored

    def __len__(self) -> int:
        return len(self.x)

    @property
    def steps(self) -> int:
        """Scored time steps in all (padding and context excluded)."""
        mask = self.mask()
        return int(self.x.shape[0] * self.x.shape[1]) if mask is None else int(mask.sum())

    def mask(self) -> np.ndarray | None:
        """(N, T) True where a step is scored data, or None when every step is."""
        if self.lengths is None and self.start == 0:
            return None
        t = np.arange(self.x.shape[1])[None, :]
        ends = self.x.shape[1] if self.lengths is None else self.lengths[:, None]
        return np.broadcast_to((t >= self.start) & (t < ends), self.x.shape[:2])

    def last(self, outputs: np.ndarray) -> np.ndarray:
        """Per-step outputs (N, T, ...) at each sequence's last valid step: (N, ...)."""
        if self.lengths is None:
            return outputs[:, -1]
        return outputs[np.arange(len(outputs)), self.lengths - 1]

    def take(self, index) -> "Split":
        index = np.asarray(index)
        return Split(self.x[index], self.y[index],
                     None if self.lengths is None else self.lengths[index], self.start)

    def head(self, items: int, steps: int) -> "Split":
        """The first ``items`` sequences, cut to their first ``steps`` steps (targets too)."""
        y = self.y[:items]
        lengths = None if self.lengths is None else np.minimum(self.lengths[:items], steps)
        return Split(x=self.x[:items, :steps], y=y[:, :steps] if y.ndim >= 2 else y,
                     lengths=lengths, start=self.start)


@dataclass
class TaskData:
    train: Split
    val: Split
    test: Split
    labels: list[str] | None = None
    vocabulary: str | None = None
    tokenizer: object = None             # a Vocabulary: texts in, token ids (text classifiers)
    ref: DataRef = field(default_factory=lambda: DataRef("builtin", "generated"))
    stream: np.ndarray | None = None     # the whole series, in order, when the data is one
    embedding_init: np.ndarray | None = None   # (tokens, dim) pretrained vectors to start from
    audio: object = None                 # a Fbank: the frames are hops of samples (WAV clips)

    @property
    def source(self) -> str:
        return self.ref.describe()

    def part(self, name: str) -> tuple[Split, DataRef]:
        """One split and the reference naming it (for contracts and reports)."""
        split = getattr(self, name)
        return split, self.ref.part(name, len(split), split.steps)


class Task:
    name: str = ""
    summary: str = ""
    metric: str = ""
    higher_is_better: bool = True
    threshold: float = 0.0        # the "useful level" the default configuration reaches
    metric_tolerance: float = 0.0  # default --max-drop: how far an artifact's metric may fall
    metric_relative: bool = False  # ... as a share of the reference value, not in metric units
    reset_every: int | None = None  # a device resets the state this often (per clip); None: never
    dataset: str = ""             # the built-in data set this task generates
    graph: str = "step"           # what export writes when neither --graph nor a profile says
    model: ModelConfig
    training: TrainConfig
    data_help: str = ""

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        raise NotImplementedError

    def load(self, path: str | Path) -> TaskData:
        raise NotImplementedError

    def loss(self, outputs, y, mask=None):
        """Training loss (torch tensors) from per-step ``outputs`` (B, T, O), targets and a
        (B, T) mask of real steps (None: every step is real)."""
        raise NotImplementedError

    def item_scores(self, outputs: np.ndarray, split: Split,
                    post: Normalization | None) -> np.ndarray:
        """The metric's contribution of each item (sequence or step): the metric is their mean.
        ``outputs`` are per step (N, T, O), as a streamed model produces them."""
        raise NotImplementedError

    def score(self, outputs: np.ndarray, split: Split, post: Normalization | None) -> float:
        """The task metric from per-step outputs (N, T, O)."""
        return float(self.item_scores(outputs, split, post).mean())

    def predictions(self, outputs: np.ndarray, split: Split) -> np.ndarray | None:
        """Predicted labels per item, for tasks that predict labels (else None)."""
        return None

    def baseline(self, split: Split) -> dict[str, float]:
        """Reference figures a trained model should beat (e.g. a naive forecast)."""
        return {}

    def baselines(self, data: TaskData) -> dict[str, float]:
        """The baselines ``train`` prints beside the test metric; may use the training split."""
        return self.baseline(data.test)

    def sized(self, data: TaskData) -> tuple[ModelConfig, TrainConfig, str]:
        """The default model and training for ``data`` (options the user gives override
        them), and a line saying what was changed for it ("" when nothing was)."""
        return self.model, self.training, ""

    def retry(self, result) -> tuple[TrainConfig, str] | None:
        """A second training to run when ``result`` (trained on the sized defaults; ``train``
        asks only when no --lr, --epochs or --time-budget was given) shows the defaults did not
        suit the data, and the line that says why; None when it does not. ``train`` then keeps
        whichever run fitted its training split better."""
        return None

    def advice(self, result=None) -> str:
        """What to change when ``result``'s test metric stays under the useful level."""
        return "try more --epochs, a larger --hidden, or more data"

    def behind(self, result) -> str:
        """The words for a model that does not even beat its baseline (worse than the naive
        forecast, below the majority class), or "" when it does."""
        return ""

    def reached(self, value: float, split: Split | None = None) -> bool:
        """Whether ``value`` of the metric is the useful level this task's defaults reach."""
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        """A long realistic input stream, (steps, F) frames or (steps,) ids, for drift checks."""
        raise NotImplementedError

    def drift_input(self, data: TaskData | None, steps: int,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """The long input for drift checks, as the device would run it: (segments, T, ...) with
        the state starting fresh at each segment, and the segments' lengths (None: all T).

        From the data set itself when it is the user's; from the generator for built-in data.
        """
        if data is None or data.ref.kind == "builtin":
            stream = self.stream(steps, seed)
            if not self.reset_every:
                return stream[None], None
            usable = len(stream) // self.reset_every * self.reset_every
            return stream[:usable].reshape(-1, self.reset_every, *stream.shape[1:]), None
        if data.stream is not None:                      # one series: run it as the device would
            return data.stream[None, :steps], None
        return _segments(data.test, steps)

    def drift_description(self, data: TaskData | None) -> str:
        """What :meth:`drift_input` streams, in words."""
        if data is None or data.ref.kind == "builtin":
            return f"the built-in {self.dataset} stream"
        where = Path(data.ref.path).name or data.ref.name
        return f"the whole series in {where}" if data.stream is not None \
            else f"test sequences of {where}"

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        """``config`` with input and output sizes matched to ``data``."""
        return config

    def normalization(self, data: TaskData) -> tuple[Normalization | None, Normalization | None]:
        """Input and output normalisation fitted on the training split (float inputs only)."""
        if data.train.x.dtype.kind != "f":
            return None, None
        return fit_normalization(data.train.x, data.train.mask()), None


def _segments(split: Split, steps: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Whole sequences of ``split``, cycled until they hold about ``steps`` valid steps."""
    per = max(1, split.steps // max(1, len(split)))
    count = max(1, -(-steps // per))
    index = np.arange(count) % len(split)
    part = split.take(index)
    return part.x, part.lengths


# ---------------------------------------------------------------------------- helpers

def fit_normalization(x: np.ndarray, mask: np.ndarray | None = None) -> Normalization:
    """Per-feature mean and std of ``x`` (N, T, F), over real steps only when ``mask`` is given."""
    flat = (x[mask] if mask is not None else x.reshape(-1, x.shape[-1])).astype(np.float64)
    std = flat.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    return Normalization(mean=[float(v) for v in flat.mean(axis=0)], std=[float(v) for v in std])


def apply_normalization(x: np.ndarray, norm: Normalization | None) -> np.ndarray:
    """``(x - mean) / std`` as contiguous float32; token ids (integers) pass through, and so do
    frames for a graph that normalises them itself (``norm.in_graph``)."""
    if norm is None or x.dtype.kind != "f" or norm.in_graph:
        return np.ascontiguousarray(x)
    return norm.apply(x)


def invert_normalization(y: np.ndarray, norm: Normalization | None) -> np.ndarray:
    if norm is None or norm.in_graph:
        return y
    return norm.invert(y)


def split_by_fraction(n: int, fractions=(0.8, 0.1)) -> tuple[slice, slice, slice]:
    a = max(1, int(n * fractions[0]))
    b = max(a + 1, int(n * (fractions[0] + fractions[1])))
    if b >= n:
        raise DataError(f"{n} items are too few to split into train, validation and test; "
                        f"provide at least 3")
    return slice(0, a), slice(a, b), slice(b, n)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes; of a folder of WAV clips, its content hash
    (:func:`edgernn.tasks.wavfolder.digest`)."""
    if Path(path).is_dir():
        from edgernn.tasks.wavfolder import digest as folder_digest

        return folder_digest(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_ref(path: str | Path, data: TaskData, features: int,
             feature_names: list[str] | None = None) -> DataRef:
    """The reference to a user's data file, with its hash and the size of each split."""
    parts = {k: len(getattr(data, k)) for k in ("train", "val", "test")}
    steps = sum(getattr(data, k).steps for k in parts)
    variable = any(getattr(data, k).lengths is not None for k in parts)
    return DataRef("file", Path(path).name, path=str(Path(path).resolve()),
                   sha256=file_sha256(path), sequences=sum(parts.values()), steps=steps,
                   features=features, feature_names=feature_names, splits=parts,
                   variable_length=variable)


def builtin_ref(name: str, seed: int, size: float, data: TaskData, features: int) -> DataRef:
    parts = {k: len(getattr(data, k)) for k in ("train", "val", "test")}
    return DataRef("builtin", name, seed=seed, size=float(size), sequences=sum(parts.values()),
                   steps=sum(getattr(data, k).steps for k in parts), features=features,
                   splits=parts)


def with_ref(data: TaskData, ref: DataRef) -> TaskData:
    return replace(data, ref=ref)


def read_npz(path: str | Path, required: tuple[str, ...], help_text: str,
             allow_nan: bool = False) -> dict[str, np.ndarray]:
    """Open an .npz file and check it has ``required`` arrays; clear errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.is_dir():
        raise DataError(f"data file {path} is a directory; pass the .npz file inside it")
    wrong = not_numpy(path, b"PK")
    if wrong:
        raise DataError(f"{path} is not an .npz file ({wrong}). {help_text}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, pickle refusal, truncated file...
        raise DataError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}). "
                        f"{help_text}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataError(f"{path} has no array(s) {', '.join(missing)} (it has "
                        f"{', '.join(sorted(arrays)) or 'none'}). {help_text}")
    for k, a in arrays.items():
        if a.dtype.kind == "f" and not allow_nan and not np.isfinite(a).all():
            raise DataError(f"{path}: array {k!r} holds NaN or inf; clean the data first")
        if a.dtype.kind == "f" and np.isinf(a).any():
            raise DataError(f"{path}: array {k!r} holds inf; clean the data first")
    return arrays


MAGIC = {b"PK": ".npz", b"\x93NUMPY": ".npy"}


def not_numpy(path, magic: bytes) -> str | None:
    """What ``path`` holds instead of the NumPy file ``magic`` opens, or None when it starts
    right (numpy's own error for a text file is a hint about pickles, which misleads)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return None                       # np.load reports it, with the OS's reason
    if head.startswith(magic):
        return None
    for other, kind in MAGIC.items():
        if head.startswith(other):
            return f"it is an {kind} file"
    if not head:
        return "it is empty"
    try:
        text = head.decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        return "it does not start the way NumPy's files do"
    first = text.splitlines()[0] if text.strip() else text
    return f"it holds text, starting {first[:40]!r}"


def check_array(a: np.ndarray, name: str, ndim: int, kinds: str, path, help_text: str) -> np.ndarray:
    if a.ndim != ndim or a.dtype.kind not in kinds:
        want = {"f": "float", "i": "integer", "u": "integer"}
        raise DataError(f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}; "
                        f"expected {ndim} dimensions of "
                        f"{' or '.join(sorted({want[k] for k in kinds}))}. {help_text}")
    return a


def check_lengths(path, part: str, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise DataError(f"{path}: x_{part} has {len(x)} items but y_{part} has {len(y)}; "
                        f"they must match")


def padded(x: np.ndarray, lengths: np.ndarray | None, name: str, path) -> tuple[np.ndarray,
                                                                                 np.ndarray | None]:
    """Sequences of different lengths: ``lengths`` given, or NaN-padded tails found.

    Returns frames with the padding set to 0 and the lengths (None when every sequence is
    full). NaN inside a sequence's real steps is refused.
    """
    n, t = x.shape[:2]
    if lengths is None:
        if x.dtype.kind != "f" or np.isfinite(x).all():
            return x, None
        empty = np.isnan(x).reshape(n, t, -1).all(-1)                 # (N, T) whole frame NaN
        # a sequence ends where a run of all-NaN frames reaches the end
        tail = np.flip(np.cumprod(np.flip(empty, 1), 1), 1).astype(bool)
        lengths = t - tail.sum(1)
        if (lengths == 0).any():
            raise DataError(f"{path}: sequence {int(np.argmin(lengths))} of {name} is entirely "
                            f"NaN or inf; drop it, or clean the data first")
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or lengths.dtype.kind not in "iu":
        raise DataError(f"{path}: lengths for {name} must be {n} integers, got shape "
                        f"{lengths.shape} of {lengths.dtype}")
    if (lengths < 1).any() or (lengths > t).any():
        raise DataError(f"{path}: lengths for {name} must lie in 1..{t}; found "
                        f"{int(lengths.min())}..{int(lengths.max())}")
    lengths = lengths.astype(np.int64)
    real = np.arange(t)[None, :] < lengths[:, None]
    if x.dtype.kind == "f":
        broken = real & ~np.isfinite(x).reshape(n, t, -1).all(-1)
        if broken.any():
            i, j = np.argwhere(broken)[0]
            raise DataError(f"{path}: {name} holds NaN or inf inside sequence {i} (step {j} of "
                            f"its {lengths[i]}); only trailing frames that are entirely NaN "
                            f"are read as padding. Clean the data first")
    x = np.where(real.reshape(n, t, *([1] * (x.ndim - 2))), x, 0).astype(x.dtype)
    return x, (None if (lengths == t).all() else lengths)
