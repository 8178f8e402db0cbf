"""One stream's state in each form edgernn's graphs lay it out, so that a snapshot moves between
the step and chunk graphs of the same weights.

edgernn writes a recurrent network's state three ways (the contract's ``layout`` says which):

- ``layers``: ``h`` (and ``c``) as (batch, layers, hidden): fused and decomposed step graphs,
  chunk graphs;
- ``compact``: ``h`` (and ``c``) as (batch, layers x hidden): the compact step graph;
- ``lean``: ``h0``, ``c0``, ``h1``, ... as (1, batch, hidden), one per layer: the lean graph;
- ``flat``: the same names as (batch, hidden): what ``quantize`` makes of a lean graph.

The values are the same network state in each. A snapshot names its model by the weights, the
quantization mode and the layout (:func:`edgernn.contract.state_fingerprint`); a model restoring
one computes that name for its own weights in every form and mode, and so knows a snapshot of
its weights in another layout (re-laid out here) from one of another precision (refused, saying
so) and from another model's. Device side: numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgernn.contract import state_fingerprint

FORMS = ("layers", "compact", "lean", "flat")
MODES = ("fp32", "fp16", "dynamic", "static")


@dataclass(frozen=True)
class _Spec:                       # what state_fingerprint reads of a state
    name: str
    shape: list
    dtype: str


@dataclass(frozen=True)
class Network:
    kinds: tuple                   # ("h",) or ("h", "c"), in the graphs' order
    layers: int
    hidden: int
    dtype: str


def network_of(contract) -> tuple[Network, str] | None:
    """The network a contract's states belong to, and the form they are in; None for a state
    layout these forms do not cover (a foreign file, a seq2seq decoder, a bidirectional one)."""
    model, states = contract.model or {}, contract.states
    layers, hidden = model.get("num_layers"), model.get("hidden_size")
    if not states or model.get("bidirectional") or not isinstance(layers, int) \
            or not isinstance(hidden, int):
        return None
    dtype = states[0].dtype
    layout = [list(s.layout) for s in states]
    kinds = tuple(s.name for s in states)
    if all(lay == ["batch", "layers_x_directions", "hidden"] for lay in layout):
        form = "layers"
    elif all(lay == ["batch", "layers_x_hidden"] for lay in layout):
        form = "compact"
    elif all(lay in (["directions", "batch", "hidden"], ["batch", "hidden"]) for lay in layout):
        form = "lean" if layout[0][0] == "directions" else "flat"
        kinds = tuple(s.name[:-1] for s in states[:len(states) // layers])
    else:
        return None
    net = Network(kinds, layers, hidden, dtype)
    if kinds not in (("h",), ("h", "c")) or [s.name for s in specs(net, form)] != \
            [s.name for s in states]:
        return None
    return net, form


def specs(net: Network, form: str) -> list[_Spec]:
    """The states of ``net`` as the graphs of ``form`` declare them."""
    L, H, d = net.layers, net.hidden, net.dtype
    if form == "layers":
        return [_Spec(k, ["batch", L, H], d) for k in net.kinds]
    if form == "compact":
        return [_Spec(k, ["batch", L * H], d) for k in net.kinds]
    shape = [1, "batch", H] if form == "lean" else ["batch", H]
    return [_Spec(f"{k}{layer}", shape, d) for layer in range(L) for k in net.kinds]


def fingerprints(net: Network, weights_sha256: str) -> dict[str, tuple[str, str]]:
    """The snapshot name of these weights in every form and mode: name -> (form, mode)."""
    return {state_fingerprint(weights_sha256, mode, specs(net, form)): (form, mode)
            for form in FORMS for mode in MODES}


def convert(states: dict[str, np.ndarray], net: Network, source: str, target: str
            ) -> dict[str, np.ndarray]:
    """One stream's states (batch 1) from the ``source`` form to the ``target`` form."""
    L, H = net.layers, net.hidden
    whole = {}                                           # kind -> (L, H)
    for k in net.kinds:
        if source in ("layers", "compact"):
            whole[k] = states[k].reshape(L, H)
        else:
            whole[k] = np.concatenate([states[f"{k}{layer}"].reshape(1, H)
                                       for layer in range(L)])
    out = {}
    for k in net.kinds:
        if target == "layers":
            out[k] = whole[k].reshape(1, L, H)
        elif target == "compact":
            out[k] = whole[k].reshape(1, L * H)
        else:
            for layer in range(L):
                out[f"{k}{layer}"] = whole[k][layer].reshape((1, 1, H) if target == "lean"
                                                             else (1, H))
    return {name: np.ascontiguousarray(v) for name, v in out.items()}


def read(model, data: bytes) -> tuple[dict[str, np.ndarray], int]:
    """The states (in ``model``'s own form) and step count of a snapshot of ``model``'s weights
    taken in any form; SnapshotError for one of another precision or another model, saying
    which."""
    from edgernn.errors import SnapshotError
    from edgernn.runtime import snapshot

    try:
        return snapshot.loads(data, model.fingerprint, model.accepted_fingerprints)
    except SnapshotError:
        taken = snapshot.model_of(data)
        mine = network_of(model.contract) if model.contract.provenance.weights_sha256 else None
        if taken is None or mine is None:
            raise
        net, form = mine
        hit = fingerprints(net, model.contract.provenance.weights_sha256).get(taken)
        if hit is None:
            raise
        source, mode = hit
        q = model.contract.quantization
        own = q.mode if q else "fp32"
        if mode != own:
            raise SnapshotError(f"the snapshot was taken from the {mode} file of these weights; "
                                f"this file is {own}. A state is kept within one precision: "
                                f"restore it into a {mode} file") from None
    states, steps = snapshot.loads(data, taken)
    return convert(states, net, source, form), steps
