"""A loaded model: one ONNX Runtime session and its contract, shareable across threads.

A :class:`Model` holds no per-stream state; :meth:`Model.stream` makes a
:class:`~edgernn.runtime.stream.Stream` that does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgernn.contract import Contract, StateSpec
from edgernn.errors import ModelError, StreamingError
from edgernn.runtime.metadata import contract_of, open_session

_NP = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32}


class Model:
    def __init__(self, session: ort.InferenceSession, contract: Contract, fingerprint: str,
                 source: str = "<bytes>"):
        self.session = session
        self.contract = contract
        self.fingerprint = fingerprint      # sha256 of the file: graph and weights
        self.source = source
        self.input = contract.inputs[0]
        self.output = contract.outputs[0]
        self.states: list[StateSpec] = list(contract.states)
        self.input_dtype = _NP[self.input.dtype]
        self._output_names = [o.name for o in contract.outputs] + [s.output for s in self.states]
        self._extra_feeds: dict[str, np.ndarray] = {}

    # ---------------------------------------------------------------- facts

    @property
    def graph(self) -> str:
        return self.contract.graph

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually got, best first."""
        return self.session.get_providers()

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Fresh state for ``batch`` streams, batch on each state's batch axis."""
        out = {}
        for s in self.states:
            shape = [batch if d == "batch" or i == s.batch_axis else d
                     for i, d in enumerate(s.shape)]
            if any(isinstance(d, str) for d in shape):
                raise ModelError(f"state {s.name} has a symbolic axis other than batch "
                                 f"({s.shape}); the runtime cannot size it")
            out[s.name] = np.full(shape, s.initial, dtype=_NP[s.dtype])
        return out

    # ---------------------------------------------------------------- running

    def run(self, x: np.ndarray, states: dict[str, np.ndarray] | None = None):
        """One session call on a batch: returns ``(y, new_states)``; ``states`` is not changed."""
        feeds = {self.input.name: x, **self._extra_feeds}
        if self.states:
            if states is None:
                states = self.initial_state(x.shape[0])
            for s in self.states:
                feeds[s.input] = states[s.name]
        outs = self.session.run(self._output_names, feeds)
        y = outs[0]
        new = {s.name: outs[len(self.contract.outputs) + i] for i, s in enumerate(self.states)}
        return y, new

    def stream(self, *, normalize: bool = True):
        from edgernn.runtime.stream import Stream

        if not self.contract.streamable:
            raise StreamingError(f"this model is a '{self.graph}' graph (whole sequences, no "
                                 f"state out), so it cannot stream; export a step or chunk graph "
                                 f"of a unidirectional model, or call model.run(x) on whole "
                                 f"sequences")
        return Stream(self, normalize=normalize)


def load(model: str | os.PathLike | bytes, *, providers: list | None = None,
         threads: int | None = None) -> Model:
    """Load an ONNX file (or its bytes) that carries an edgernn contract."""
    data = bytes(model) if isinstance(model, (bytes, bytearray)) else None
    if data is None:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        data = path.read_bytes()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = open_session(data, options, providers)
    contract = contract_of(session)
    source = "<bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
    if contract is None:
        raise ModelError(f"{source} carries no edgernn contract; export it with 'edgernn export'")
    return Model(session, contract, hashlib.sha256(data).hexdigest(), source)
