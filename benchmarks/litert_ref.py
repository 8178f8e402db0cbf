"""LiteRT as a reference path for the benchmarks: the same PyTorch network as a .tflite step.

edgernn's runtime is measured against what a LiteRT app would run. ``ai-edge-litert`` ships the
interpreter and the flatbuffer schema, not a converter (that needs TensorFlow), so this module
writes the file itself from the torch module's weights, as LiteRT's converter lays them out:

- LSTM and vanilla RNN layers: LiteRT's fused ``LSTM`` / ``RNN`` kernels, the state in
  variable tensors the interpreter keeps between calls (how a stateful LiteRT model streams);
- GRU layers (LiteRT has no fused GRU): the converter's composition of ``FULLY_CONNECTED``,
  ``SPLIT``, ``LOGISTIC``, ``TANH``, ``ADD``, ``MUL``, ``SUB``, the state fed back by the app;
- the head: ``FULLY_CONNECTED``.

``int8=True`` is LiteRT's dynamic-range ("hybrid") int8: weights int8 (per tensor for the fused
cells, per output channel for ``FULLY_CONNECTED``), activations quantized per call, asymmetric,
by the kernels themselves. It is benchmark code, not part of edgernn.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S
from ai_edge_litert.interpreter import Interpreter

_TYPES = {np.dtype(np.float32): S.TensorType.FLOAT32, np.dtype(np.int8): S.TensorType.INT8,
          np.dtype(np.int32): S.TensorType.INT32}
_ACT = {"tanh": S.ActivationFunctionType.TANH, "relu": S.ActivationFunctionType.RELU}


class _Writer:
    def __init__(self):
        self.model = S.ModelT()
        self.model.version = 3
        self.model.buffers = [S.BufferT()]
        self.model.operatorCodes = []
        self.sub = S.SubGraphT()
        self.sub.tensors, self.sub.operators, self.sub.inputs, self.sub.outputs = [], [], [], []
        self.codes: dict[int, int] = {}
        self.batch = 1

    def tensor(self, name, shape, data=None, dtype=np.float32, variable=False, scale=None):
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), _TYPES[np.dtype(dtype)]
        t.buffer, t.isVariable = 0, variable
        if data is not None:
            buf = S.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data, dtype).tobytes(), np.uint8)
            self.model.buffers.append(buf)
            t.buffer = len(self.model.buffers) - 1
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [0] * len(q.scale)
            q.quantizedDimension = 0
            t.quantization = q
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def weight(self, name, w, int8: bool, per_channel: bool):
        """Constant weights, as the converter writes them: fp32, or int8 symmetric."""
        if not int8:
            return self.tensor(name, w.shape, w)
        top = np.abs(w).max(axis=1) if per_channel else np.array(np.abs(w).max())
        scale = np.maximum(top, 1e-12) / 127
        q = np.clip(np.round(w / (scale[:, None] if per_channel else scale)), -127, 127)
        return self.tensor(name, w.shape, q, np.int8, scale=scale)

    def op(self, code, inputs, outputs, options_type=0, options=None):
        if code not in self.codes:
            c = S.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            self.model.operatorCodes.append(c)
            self.codes[code] = len(self.model.operatorCodes) - 1
        o = S.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes[code], list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.sub.operators.append(o)

    def fc(self, x, w, b, width, name, int8):
        opts = S.FullyConnectedOptionsT()
        opts.asymmetricQuantizeInputs = True
        out = self.tensor(name, (self.batch, width))
        self.op(S.BuiltinOperator.FULLY_CONNECTED,
                [x, self.weight(name + "/w", w, int8, True), self.tensor(name + "/b", b.shape, b)],
                [out], S.BuiltinOptions.FullyConnectedOptions, opts)
        return out

    def binary(self, code, a, b, shape, name):
        options = {S.BuiltinOperator.ADD: (S.BuiltinOptions.AddOptions, S.AddOptionsT()),
                   S.BuiltinOperator.MUL: (S.BuiltinOptions.MulOptions, S.MulOptionsT()),
                   S.BuiltinOperator.SUB: (S.BuiltinOptions.SubOptions, S.SubOptionsT())}[code]
        out = self.tensor(name, shape)
        self.op(code, [a, b], [out], *options)
        return out

    def unary(self, code, a, shape, name):
        out = self.tensor(name, shape)
        self.op(code, [a], [out])
        return out

    def bytes(self) -> bytes:
        self.model.subgraphs = [self.sub]
        b = flatbuffers.Builder(1 << 16)
        b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _lstm(wr: _Writer, x, p, h: int, int8: bool, k: int):
    w_ih, w_hh, bias = p["ih"], p["hh"], p["bias"]
    none = -1
    ins = [x]
    ins += [wr.weight(f"l{k}/wi{g}", w_ih[g * h:(g + 1) * h], int8, False) for g in range(4)]
    ins += [wr.weight(f"l{k}/wh{g}", w_hh[g * h:(g + 1) * h], int8, False) for g in range(4)]
    ins += [none] * 3                                                   # no peepholes
    ins += [wr.tensor(f"l{k}/b{g}", (h,), bias[g * h:(g + 1) * h]) for g in range(4)]
    ins += [none, none]                                                 # no projection
    ins += [wr.tensor(f"l{k}/h", (wr.batch, h), variable=True), wr.tensor(f"l{k}/c", (wr.batch, h),
                                                                   variable=True)]
    ins += [none] * 4                                                   # no layer norm
    opts = S.LSTMOptionsT()
    opts.fusedActivationFunction, opts.kernelType = _ACT["tanh"], S.LSTMKernelType.FULL
    opts.asymmetricQuantizeInputs = True
    out = wr.tensor(f"l{k}/out", (wr.batch, h))
    wr.op(S.BuiltinOperator.LSTM, ins, [out], S.BuiltinOptions.LSTMOptions, opts)
    return out, []


def _rnn(wr: _Writer, x, p, h: int, int8: bool, k: int, act: str = "tanh"):
    opts = S.RNNOptionsT()
    opts.fusedActivationFunction, opts.asymmetricQuantizeInputs = _ACT[act], True
    out = wr.tensor(f"l{k}/out", (wr.batch, h))
    wr.op(S.BuiltinOperator.RNN,
          [x, wr.weight(f"l{k}/wi", p["ih"], int8, False),
           wr.weight(f"l{k}/wh", p["hh"], int8, False), wr.tensor(f"l{k}/b", (h,), p["bias"]),
           wr.tensor(f"l{k}/h", (wr.batch, h), variable=True)],
          [out], S.BuiltinOptions.RNNOptions, opts)
    return out, []


def _gru(wr: _Writer, x, p, h: int, int8: bool, k: int):
    state = wr.tensor(f"l{k}/h_in", (wr.batch, h))
    wr.sub.inputs.append(state)
    gi = wr.fc(x, p["ih"], p["b_ih"], 3 * h, f"l{k}/gi", int8)
    gh = wr.fc(state, p["hh"], p["b_hh"], 3 * h, f"l{k}/gh", int8)
    axis = wr.tensor(f"l{k}/axis", (), np.array(1, np.int32), np.int32)
    parts = {}
    for name, src in (("i", gi), ("h", gh)):
        outs = [wr.tensor(f"l{k}/{name}{g}", (wr.batch, h)) for g in "rzn"]
        opts = S.SplitOptionsT()
        opts.numSplits = 3
        wr.op(S.BuiltinOperator.SPLIT, [axis, src], outs, S.BuiltinOptions.SplitOptions, opts)
        parts[name] = outs
    (ir, iz, in_), (hr, hz, hn) = parts["i"], parts["h"]
    shape = (wr.batch, h)
    r = wr.unary(S.BuiltinOperator.LOGISTIC, wr.binary(S.BuiltinOperator.ADD, ir, hr, shape,
                                                       f"l{k}/r_"), shape, f"l{k}/r")
    z = wr.unary(S.BuiltinOperator.LOGISTIC, wr.binary(S.BuiltinOperator.ADD, iz, hz, shape,
                                                       f"l{k}/z_"), shape, f"l{k}/z")
    n = wr.unary(S.BuiltinOperator.TANH, wr.binary(
        S.BuiltinOperator.ADD, in_, wr.binary(S.BuiltinOperator.MUL, r, hn, shape, f"l{k}/rh"),
        shape, f"l{k}/n_"), shape, f"l{k}/n")
    diff = wr.binary(S.BuiltinOperator.SUB, state, n, shape, f"l{k}/d")
    out = wr.binary(S.BuiltinOperator.ADD, n, wr.binary(S.BuiltinOperator.MUL, z, diff, shape,
                                                        f"l{k}/zd"), shape, f"l{k}/out")
    return out, [(state, out)]


def _layers(net) -> list[dict]:
    rnn, out = net.rnn, []
    for k in range(rnn.num_layers):
        p = {n: getattr(rnn, f"{n}_l{k}").detach().numpy().astype(np.float32)
             for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        out.append({"ih": p["weight_ih"], "hh": p["weight_hh"], "b_ih": p["bias_ih"],
                    "b_hh": p["bias_hh"], "bias": p["bias_ih"] + p["bias_hh"]})
    return out


def from_torch(net, int8: bool = False, batch: int = 1) -> tuple[bytes, list[tuple[str, str]]]:
    """The .tflite bytes of one step of edgernn's ``RecurrentNet`` ``net`` (frames in,
    unidirectional) for ``batch`` streams, and the (state input, state output) names the app
    feeds back (GRU)."""
    c = net.config
    if c.bidirectional or c.tokens:
        raise ValueError("the LiteRT reference takes unidirectional frame models")
    wr = _Writer()
    wr.batch = batch
    x = wr.tensor("x", (batch, c.input_size))
    wr.sub.inputs.append(x)
    fed_back = []
    for k, p in enumerate(_layers(net)):
        if c.cell == "lstm":
            x, back = _lstm(wr, x, p, c.hidden_size, int8, k)
        elif c.cell == "gru":
            x, back = _gru(wr, x, p, c.hidden_size, int8, k)
        else:
            x, back = _rnn(wr, x, p, c.hidden_size, int8, k, c.nonlinearity)
        fed_back += back
    head = net.head
    y = wr.fc(x, head.weight.detach().numpy(), head.bias.detach().numpy(), c.output_size, "y",
              int8)
    wr.sub.outputs = [y] + [o for _, o in fed_back]
    names = [(wr.sub.tensors[i].name, wr.sub.tensors[o].name) for i, o in fed_back]
    return wr.bytes(), names


class Stream:
    """One LiteRT stream on one thread: ``step(frame)`` -> output, the state kept (in the
    interpreter's variable tensors, or fed back by the app for composed cells)."""

    def __init__(self, tflite: bytes, fed_back: list[tuple[str, str]], threads: int = 1):
        self.interp = Interpreter(model_content=tflite, num_threads=threads)
        self.interp.allocate_tensors()
        ins = {d["name"]: d["index"] for d in self.interp.get_input_details()}
        outs = {d["name"]: d["index"] for d in self.interp.get_output_details()}
        self._x = self.interp.tensor(ins["x"])
        self._y = self.interp.tensor(outs["y"])
        self._back = [(self.interp.tensor(ins[i]), self.interp.tensor(outs[o]))
                      for i, o in fed_back]
        self.reset()

    def reset(self) -> None:
        self.interp.reset_all_variables()
        for i, _ in self._back:
            i()[...] = 0

    def step(self, frame: np.ndarray) -> np.ndarray:
        """One step of one stream (batch 1): its output."""
        self._x()[0] = frame
        self.interp.invoke()
        for i, o in self._back:
            i()[...] = o()
        return self._y()[0].copy()

    def step_many(self, frames: np.ndarray) -> np.ndarray:
        """One step of every stream of a batched file: frames (B, F) -> outputs (B, O)."""
        self._x()[...] = frames
        self.interp.invoke()
        for i, o in self._back:
            i()[...] = o()
        return self._y().copy()
