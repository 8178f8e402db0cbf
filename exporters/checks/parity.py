"""Comparing an ONNX artifact with its PyTorch reference: the pieces export and validate share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def spans(length: int, sizes: list[int] | None) -> list[tuple[int, int]]:
    """Cut ``length`` steps into consecutive spans of ``sizes`` (cycled); None: one span."""
    if not sizes:
        return [(0, length)]
    out, t, i = [], 0, 0
    while t < length:
        n = sizes[i % len(sizes)]
        out.append((t, min(length, t + n)))
        t, i = t + n, i + 1
    return out


def random_splits(length: int, rng: np.random.Generator, max_chunk: int = 9) -> list[int]:
    return [int(v) for v in rng.integers(1, max_chunk + 1, size=length)]


def drive(model, x: np.ndarray, chunks: list[int] | None = None):
    """Run a loaded artifact over ``x`` (B, T, ...) as a stream would.

    step graphs go one step per call; chunk graphs in the given chunk sizes (whole at once when
    None); sequence graphs in one call. Returns per-step outputs and the final state.
    """
    if model.graph == "sequence":
        return model.run(x)[0], {}
    states = model.initial_state(x.shape[0])
    ys = []
    if model.graph == "step":
        for t in range(x.shape[1]):
            y, states = model.run(np.ascontiguousarray(x[:, t]), states)
            ys.append(y[:, None])
    else:
        for a, b in spans(x.shape[1], chunks):
            y, states = model.run(np.ascontiguousarray(x[:, a:b]), states)
            ys.append(y)
    return np.concatenate(ys, axis=1), states


# The tolerance rule, everywhere parity is judged: an element passes when
#     |got - want| <= atol + rtol * |want|
# float32 keeps ~7 significant digits, so outputs in large units (a series in the 10^4s) differ
# by 1e-4 or more from rounding alone; rtol covers that, atol values near zero.
from edgernn.choices import RTOL  # noqa: E402,F401  (re-exported)


def within(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Elementwise: does ``got`` meet ``want`` under the rule above? (NaN never does.)"""
    return np.abs(got - want) <= atol + rtol * np.abs(want)


@dataclass
class TensorError:
    name: str
    kind: str            # "output" or "state"
    max_abs: float
    max_rel: float
    tolerance: float     # atol
    rtol: float = 0.0
    ok: bool | None = None   # every element within atol + rtol * |want| (None: max_abs alone)
    scale: float = 0.0   # max |want|: what rtol multiplies

    @property
    def passed(self) -> bool:
        if not np.isfinite(self.max_abs):
            return False
        return self.max_abs <= self.tolerance if self.ok is None else self.ok

    def describe(self) -> str:
        rule = f"{self.tolerance:.1g}" + (f" + {self.rtol:.1g} x |value| (values up to "
                                          f"{self.scale:.3g})" if self.rtol else "")
        return f"{self.name}: max abs {self.max_abs:.3g} > {rule}"


def compare(name: str, kind: str, got: np.ndarray, want: np.ndarray,
            tolerance: float, rtol: float = RTOL) -> TensorError:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape and got.shape[:1] == want.shape[:1] and got.size == want.size:
        want = want.reshape(got.shape)      # the same state with its axes merged (compact form)
    if got.shape != want.shape:
        return TensorError(f"{name} (shape {got.shape} != {want.shape})", kind, float("inf"),
                           float("inf"), tolerance, rtol, False)
    diff = np.abs(got - want)
    rel = diff / np.maximum(np.abs(want), 1e-3)       # relative to the value, floored near zero
    return TensorError(name, kind, float(diff.max(initial=0)), float(rel.max(initial=0)),
                       tolerance, rtol, bool(within(got, want, tolerance, rtol).all()),
                       float(np.abs(want).max(initial=0)))


def expected_states(contract, names: list[str], states: list) -> list:
    """The reference's final states (as the source module keeps them, batch-major, called
    ``names``) in the order and form of the graph's: the same state, the state with its layers
    merged (compact graphs: compared after a reshape), or one layer of it (lean graphs keep
    ``h0``, ``c0``, ``h1``...)."""
    import re

    out = []
    for spec in contract.states:
        if spec.name in names:
            out.append(states[names.index(spec.name)])
            continue
        layer = re.fullmatch(r"(.+?)(\d+)", spec.name)
        if layer and layer.group(1) in names:
            one = states[names.index(layer.group(1))][:, int(layer.group(2))]     # (B, H)
            out.append(one.reshape((1,) * spec.batch_axis + one.shape))   # (1, B, H) if so
            continue
        raise ValueError(f"the graph's state {spec.name!r} has no counterpart among the "
                         f"module's states ({', '.join(names)})")
    return out


BATCH = 512    # sequences per call when driving a whole test split


def whole_lengths(streamable: bool, split):
    """Lengths to run ``split`` by, one length per call (see :func:`batched`), for a model that
    reads whole sequences (a padded tail would reach its backward direction); None for a
    streamed one, whose padded tail comes after every step that is read."""
    return None if streamable else split.lengths


def batched(fn, x: np.ndarray, axes: dict | None = None, lengths: np.ndarray | None = None):
    """``fn`` over ``x`` in slices of :data:`BATCH` sequences: outputs and states concatenated
    (a model's named states on their batch axes, ``axes``; a reference's on axis 0).

    ``lengths`` (N,) given: each sequence runs cut to its own length, in slices of sequences of
    one length -- what a model that reads the whole sequence both ways needs, since a padded
    tail would reach its backward direction. Per-step outputs come back padded to ``x``'s
    length with zeros (every reader masks them); rows keep ``x``'s order."""
    if lengths is None:
        slices = [(np.arange(i, min(i + BATCH, len(x))), x.shape[1])
                  for i in range(0, len(x), BATCH)]
    else:
        lengths = np.asarray(lengths)
        slices = []
        for n in np.unique(lengths):
            rows = np.flatnonzero(lengths == n)
            slices += [(rows[i:i + BATCH], int(n)) for i in range(0, len(rows), BATCH)]
    ys, states = [], []
    for rows, n in slices:
        y, s = fn(np.ascontiguousarray(x[rows, :n]))
        if y.ndim >= 3 and n < x.shape[1]:                     # per step: pad back to T
            y = np.concatenate([y, np.zeros((y.shape[0], x.shape[1] - n, *y.shape[2:]),
                                            y.dtype)], axis=1)
        ys.append(y)
        states.append(s)
    back = np.argsort(np.concatenate([rows for rows, _ in slices]), kind="stable")
    if isinstance(states[0], dict):
        merged = {k: np.take(np.concatenate([s[k] for s in states], axis=(axes or {}).get(k, 0)),
                             back, axis=(axes or {}).get(k, 0)) for k in states[0]}
    else:
        merged = [np.concatenate([s[i] for s in states])[back] for i in range(len(states[0]))]
    return np.concatenate(ys)[back], merged
