"""Triton model repositories from edgernn artifacts: every config.pbtxt parses against Triton's
own schema (tritonclient's model_config_pb2), its states match the contract, and the renamed
state pairs survive Triton's sorted-name pairing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from edgernn.errors import ConfigError
from edgernn.runtime import load
from edgernn.serving import Options, write_repository
from edgernn.serving.repository import sorted_state_names
from tests.serving.conftest import frames


def parse(folder) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((folder / "config.pbtxt").read_text(), config)   # raises on any error
    return config


CASES = [("lstm", "python"), ("gru", "python"), ("rnn", "python"), ("lstm_lean", "python"),
         ("int8", "python"), ("lstm", "onnxruntime"), ("gru", "onnxruntime"),
         ("rnn", "onnxruntime"), ("int8", "onnxruntime"), ("lstm_lean", "onnxruntime"),
         ("int8_lean", "onnxruntime")]


@pytest.mark.parametrize("strategy", ["oldest", "direct"])
@pytest.mark.parametrize("which,backend", CASES)
def test_config_parses_and_matches_the_contract(serve_models, tmp_path, which, backend,
                                                strategy):
    options = Options(name="m", backend=backend, strategy=strategy, max_batch_size=32,
                      idle_seconds=2.5, instances=3, kind="gpu" if backend == "onnxruntime"
                      else "cpu")
    folder = write_repository(serve_models[which], tmp_path, options)
    config = parse(folder)
    contract = load(serve_models[which]).contract
    assert (config.name, config.backend, config.max_batch_size) == ("m", backend, 32)
    assert [i.name for i in config.input] == [contract.inputs[0].name]
    assert list(config.input[0].dims) == [5]
    assert list(config.output[0].dims) == [3]
    batcher = config.sequence_batching
    assert batcher.max_sequence_idle_microseconds == 2_500_000
    assert batcher.WhichOneof("strategy_choice") == strategy
    group = config.instance_group[0]
    assert group.count == 3
    assert group.kind == (model_config_pb2.ModelInstanceGroup.KIND_GPU
                          if backend == "onnxruntime" else model_config_pb2.ModelInstanceGroup.KIND_CPU)
    if backend == "python":
        kinds = {c.name: c.control[0].kind for c in batcher.control_input}
        assert set(kinds) == {"START", "END", "CORRID"}
        assert (folder / "1" / "model.py").exists()
        assert not batcher.state
        return
    # implicit state: one entry per contract state, dims without the batch axis, zeros first
    assert len(batcher.state) == len(contract.states)
    served = load(folder / "1" / "model.onnx").contract
    for entry, spec in zip(batcher.state, served.states):
        assert (entry.input_name, entry.output_name) == (spec.input, spec.output)
        assert list(entry.dims) == list(spec.shape[1:])
        assert entry.data_type == model_config_pb2.TYPE_FP32
        assert entry.initial_state[0].zero_data
        assert list(entry.initial_state[0].dims) == list(spec.shape[1:])


@pytest.mark.parametrize("which", ["lstm_lean", "gru_lean", "int8_lean"])
def test_lean_files_are_served_with_the_batch_first(serve_models, tmp_path, which):
    """The lean form keeps its state as (1, batch, H), ONNX Runtime's recurrent kernels' own
    layout; Triton's implicit state puts the batch first. The repository's copy takes and returns
    (batch, H) (an Unsqueeze and a Squeeze around the graph) and streams the same numbers, bit for
    bit: nothing but the state's shape changed. (A quantized lean file's kernel nodes take
    (batch, H) already.)"""
    import numpy as np

    folder = write_repository(serve_models[which], tmp_path, Options(backend="onnxruntime"))
    served, original = load(folder / "1" / "model.onnx"), load(serve_models[which])
    assert all(s.batch_axis == 0 and len(s.shape) == 2 for s in served.contract.states)
    assert [s.shape[-1] for s in served.contract.states] == \
        [s.shape[-1] for s in original.contract.states]
    a, b = served.stream(normalize=False), original.stream(normalize=False)
    frames = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    for x in frames:
        np.testing.assert_array_equal(a.step(x), b.step(x))
    pool = served.pool(normalize=False)                   # batch-first states pool as well
    ids = [pool.open() for _ in range(3)]
    pool.step_many(ids, frames[:3])


def test_sequence_graphs_are_refused(tmp_path):
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.models import build

    cfg = ModelConfig(cell="gru", input_size=5, hidden_size=8, num_layers=1, output_size=3,
                      head="classify_step")
    path = export(build(cfg, seed=0), tmp_path / "chunk.onnx", graph="chunk").path
    with pytest.raises(ConfigError, match="one step per request: export a step graph"):
        write_repository(path, tmp_path / "repo", Options())


def test_published_stateful_model_with_its_state_mapping(serve_models, tmp_path):
    """Silero VAD (not exported by edgernn): its state pair and sample-rate constant given the
    way `edgernn run` takes them; the Python flavour carries them to the server."""
    if "silero" not in serve_models:
        pytest.skip("silero-vad is not installed")
    kwargs = {"states": {"state": "stateN"}, "constants": {"sr": 16000},
              "dims": {"input[1]": 512}}
    folder = write_repository(serve_models["silero"], tmp_path, Options(name="vad"),
                              load_kwargs=kwargs)
    config = parse(folder)
    assert list(config.input[0].dims) == [512]
    assert (folder / "1" / "load.json").exists()
    with pytest.raises(ConfigError, match="constant inputs"):
        write_repository(serve_models["silero"], tmp_path / "ort",
                         Options(name="vad", backend="onnxruntime"), load_kwargs=kwargs)


def _cache_model(path):
    """A foreign model whose state names sort differently as inputs and as outputs:
    cache, cache_len -> cache_next, cache_len_next (Triton would swap them, silently: the
    shapes agree)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    cache = helper.make_tensor_value_info("cache", TensorProto.FLOAT, ["batch", 4])
    length = helper.make_tensor_value_info("cache_len", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    nxt = helper.make_tensor_value_info("cache_next", TensorProto.FLOAT, ["batch", 4])
    nlen = helper.make_tensor_value_info("cache_len_next", TensorProto.FLOAT, ["batch", 4])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [helper.make_node("Add", ["cache", "x"], ["cache_next"]),     # running sum
             helper.make_node("Add", ["cache_len", "one"], ["cache_len_next"]),  # count
             helper.make_node("Div", ["cache_next", "cache_len_next"], ["y"])]   # running mean
    graph = helper.make_graph(nodes, "cache", [x, cache, length], [y, nxt, nlen], [one])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _triton_pairing(session, names, xs):
    """Run a file as Triton's implicit state does: state inputs and outputs each sorted by
    name, the i-th output fed back as the i-th input, zeros to start."""
    ins = sorted(n for n in names if n != "x")
    outs = sorted(o.name for o in session.get_outputs() if o.name != "y")
    shapes = {i.name: [1, *i.shape[1:]] for i in session.get_inputs()}
    state = {n: np.zeros(shapes[n], np.float32) for n in ins}
    ys = []
    for x in xs:
        result = dict(zip([o.name for o in session.get_outputs()],
                          session.run(None, {"x": x[None], **state})))
        ys.append(result["y"][0])
        state = {i: result[o] for i, o in zip(ins, outs)}
    return np.array(ys)


def test_state_names_triton_would_swap_are_renamed(tmp_path):
    import onnxruntime as ort

    path = _cache_model(tmp_path / "cache.onnx")
    kwargs = {"states": {"cache": "cache_next", "cache_len": "cache_len_next"}}
    folder = write_repository(path, tmp_path / "repo", Options(backend="onnxruntime"),
                              load_kwargs=kwargs)
    config = parse(folder)
    pairs = [(s.input_name, s.output_name) for s in config.sequence_batching.state]
    assert pairs == [("s00_in", "s00_out"), ("s01_in", "s01_out")]
    xs = frames(0, 6)[:, :4]
    want = np.cumsum(xs, axis=0) / np.arange(1, 7)[:, None]          # the running mean
    original = ort.InferenceSession(str(path))
    swapped = _triton_pairing(original, [i.name for i in original.get_inputs()], xs)
    assert not np.allclose(swapped, want), "the original names should pair wrongly"
    renamed = ort.InferenceSession(str(folder / "1" / "model.onnx"))
    got = _triton_pairing(renamed, [i.name for i in renamed.get_inputs()], xs)
    np.testing.assert_allclose(got, want, rtol=1e-6)   # fp32 sums of six values


def test_edgernn_state_names_keep_their_pairing(serve_models):
    for which in ("lstm", "gru", "rnn"):
        contract = load(serve_models[which]).contract
        assert sorted_state_names(contract) == [(s.input, s.output) for s in contract.states]


@pytest.mark.parametrize("bad,match", [
    (dict(backend="tensorrt"), "backend 'tensorrt'"), (dict(strategy="newest"), "strategy"),
    (dict(max_batch_size=0), "max_batch_size"), (dict(name="a b"), "model name"),
    (dict(idle_seconds=0), "idle timeout"), (dict(kind="tpu"), "instance kind")])
def test_bad_options_are_one_clear_error(serve_models, tmp_path, bad, match):
    with pytest.raises(ConfigError, match=match):
        write_repository(serve_models["gru"], tmp_path, Options(**bad))
    assert not any(tmp_path.iterdir())


def test_a_file_with_external_weights_is_refused_before_writing(serve_models, tmp_path):
    """Only model.onnx goes into the repository: its separate weights file would be missing."""
    proto = onnx.load(serve_models["gru"])
    onnx.save(proto, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.data",
              size_threshold=256)        # the weight matrices, not the small constants
    with pytest.raises(ConfigError, match="keeps its weights in a separate data file"):
        write_repository(tmp_path / "ext.onnx", tmp_path / "repo", Options(name="ext"))
    assert not (tmp_path / "repo" / "ext").exists()
