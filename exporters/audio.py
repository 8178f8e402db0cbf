"""The audio front end as ONNX nodes: raw PCM in, log-mel frames out, the overlap as state.

:func:`write` adds the front end to a graph under construction (an
:class:`~edgernn.exporters.graph.Writer`); :func:`front_end_model` is the front end alone, a
step graph of its own. One step takes ``hops`` hops of samples, ``pcm`` (batch, hops * hop)
float32 in [-1, 1), and the previous ``tail`` (batch, frame_length - hop); it returns
``features`` (batch, hops, mel_bins) and the new tail. Every runtime carries the tail like any
recurrent state (snapshots, pools, Triton's implicit state, the browser), zeros at the start.

The arithmetic and its constants are :class:`edgernn.frontend.Fbank`'s: frames gathered from
tail + pcm, one product with the folded spectrum basis, the square, the mel product (which also
sums the squared real and imaginary parts), the floored log. Parity with kaldi-native-fbank
is in tests/exporters/test_audio.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgernn.exporters.graph import Writer
from edgernn.frontend import LOG_FLOOR, TAIL, Fbank

PREFIX = "audio_"          # the front end's node names begin so (exporters.quant.int8 reads it)
AUDIO_KEY = "edgernn.audio"      # the metadata entry holding the options, as JSON


def write(g: Writer, pcm: str, tail: str, fbank: Fbank, hops: int,
          flat: bool = False) -> tuple[str, str]:
    """Nodes from ``pcm`` and ``tail`` to (features, new tail): see the module's docstring.
    ``flat`` (one hop only): features (batch, mel), with no time axis to gather or squeeze."""
    if hops < 1:
        raise ValueError(f"a step takes at least one hop of samples, not {hops}")
    if flat and hops != 1:
        raise ValueError(f"flat features are one hop's, not {hops} hops'")
    first = len(g.nodes)
    features, new_tail = _nodes(g, pcm, tail, fbank, hops, flat)
    for node in g.nodes[first:]:                    # named as the front end's: quantize keeps
        node.name = PREFIX + node.name              # their products in float
    return features, new_tail


def _nodes(g: Writer, pcm: str, tail: str, fbank: Fbank, hops: int,
           flat: bool) -> tuple[str, str]:
    length, hop, keep = fbank.frame_length, fbank.hop, fbank.tail
    buffer = g.one("Concat", [tail, pcm], axis=1)                     # (B, keep + hops*hop)
    if flat:                                                          # one hop: the buffer
        frames = buffer                                               # is the frame (B, L)
    else:
        index = np.arange(hops)[:, None] * hop + np.arange(length)[None, :]
        frames = g.one("Gather", [buffer, g.const("frame_index", index.astype(np.int64))],
                       axis=1)                                        # (B, hops, L)
    parts = g.one("MatMul", [frames, g.const("spectrum_basis", fbank.spectrum_basis())])
    square = g.one("Mul", [parts, parts])                             # (B, [hops,] 2K)
    mel = g.one("MatMul", [square, g.const("mel_banks", fbank.power_mel_banks())])
    floored = g.one("Max", [mel, g.const("log_floor", np.array(LOG_FLOOR, np.float32))])
    features = g.one("Log", [floored])
    start = g.const("tail_start", np.array([hops * hop], np.int64))
    end = g.const("tail_end", np.array([hops * hop + keep], np.int64))
    new_tail = g.one("Slice", [buffer, start, end, g.const("axis1", np.array([1], np.int64))])
    return features, new_tail


def front_end_model(fbank: Fbank, hops: int = 1, opset: int = 17) -> onnx.ModelProto:
    """The front end alone: inputs ``pcm``, ``audio_tail``; outputs ``features``,
    ``audio_tail_out``."""
    g = Writer(opset=opset)
    features, new_tail = write(g, "pcm", TAIL, fbank, hops)
    g.nodes.append(helper.make_node("Identity", [features], ["features"], name="features"))
    g.nodes.append(helper.make_node("Identity", [new_tail], [f"{TAIL}_out"], name="tail"))
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "edgernn_audio_front_end",
        [helper.make_tensor_value_info("pcm", f32, ["batch", hops * fbank.hop]),
         helper.make_tensor_value_info(TAIL, f32, ["batch", fbank.tail])],
        [helper.make_tensor_value_info("features", f32, ["batch", hops, fbank.mel_bins]),
         helper.make_tensor_value_info(f"{TAIL}_out", f32, ["batch", fbank.tail])],
        initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edgernn")
    proto.metadata_props.append(onnx.StringStringEntryProto(
        key=AUDIO_KEY, value=json.dumps(fbank.to_dict(), sort_keys=True)))
    onnx.checker.check_model(proto)
    return proto
