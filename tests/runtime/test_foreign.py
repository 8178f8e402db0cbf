"""A published stateful ONNX model edgernn did not write: Silero VAD, as its package ships it.

Its input is ``[?, ?]`` (no axis names at all), its state ``[2, ?, 128]`` (batch in the middle)
and it takes a constant sample rate. It must stream unchanged, through the API and the CLI,
with outputs equal to raw ONNX Runtime (tolerance 0: the same kernels on the same inputs).
"""

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest

from edgernn.errors import ModelError
from edgernn.runtime import InferredContractWarning, load
from tests.conftest import run_cli

FRAME = 576            # 512 new samples at 16 kHz and the 64 before them, as Silero's own loop
KW = {"constants": {"sr": 16000}, "dims": {"input[1]": FRAME}}


@pytest.fixture(scope="module")
def vad(models):
    path = models / "silero_vad.onnx"
    if not path.exists():
        pytest.skip("silero-vad is not installed here (it ships the published model)")
    return path


@pytest.fixture(scope="module")
def audio():
    t = np.arange(40 * FRAME) / 16000
    rng = np.random.default_rng(0)
    signal = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    signal += rng.normal(0, 0.01, t.size)
    return signal.reshape(40, FRAME).astype(np.float32)


def raw_ort(path, frames, batch_rows=None):
    """What Silero's own ONNX wrapper does: state fed back, sr as an int64 scalar."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state, out = np.zeros((2, 1, 128), np.float32), []
    for f in frames:
        y, state = sess.run(None, {"input": f[None], "state": state,
                                   "sr": np.array(16000, np.int64)})
        out.append(y[0])
    return np.array(out)


def test_streams_unchanged_through_the_api(vad, audio):
    with pytest.warns(InferredContractWarning, match="state -> stateN; data input input "
                                                     r"\['batch', 576\]"):
        model = load(vad, **KW)
    assert model.states[0].shape == [2, "batch", 128] and model.states[0].batch_axis == 1
    stream = model.stream()
    got = np.array([stream.step(f) for f in audio])
    np.testing.assert_array_equal(got, raw_ort(vad, audio))
    stream.reset()
    np.testing.assert_array_equal(stream.feed(audio), got)


def test_pooled_streams_equal_lone_ones(vad, audio):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferredContractWarning)
        model = load(vad, **KW)
    pool = model.pool()
    a, b = pool.open(), pool.open()
    lone = raw_ort(vad, audio)
    for t, frame in enumerate(audio):
        out = pool.step({a: frame, b: audio[-1 - t] * 3})
        np.testing.assert_allclose(out[a], lone[t], rtol=0, atol=1e-6)


def test_open_axes_are_named_by_position_and_asked_for(vad):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferredContractWarning)
        with pytest.raises(ModelError, match=r"candidates are input \['input\[0\]', "
                                             r"'input\[1\]'\], sr \[\].*--constant NAME=VALUE"):
            load(vad)
        model = load(vad, constants={"sr": 16000})
        with pytest.raises(ModelError, match=r"leaves the size of frame axis input\[1\] open.*"
                                             r"dims=\{'input\[1\]': SIZE\}.*--dim "
                                             r"input\[1\]=SIZE"):
            model.stream()
        with pytest.raises(ModelError, match="each axis name maps to a positive int"):
            load(vad, constants={"sr": 16000}, dims={"input[1]": 0})


def test_named_axes_are_fixed_by_free_dimension_overrides(models, audio):
    """The same network exported with named axes (batch, sequence): fixed at load, the file
    untouched; its other branch (8 kHz) stays in the file."""
    from tests.runtime.models import published_vad

    path = published_vad()
    if path is None:
        pytest.skip("silero-vad is not installed here")
    named = path.parent / "silero_vad_16k_op15.onnx"
    before = named.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferredContractWarning)
        model = load(named, constants={"sr": 16000}, dims={"sequence": FRAME})
    inputs = {i.name: i.shape for i in model.session.get_inputs()}
    assert inputs["input"] == ["batch", FRAME] and model.input.shape == ["batch", FRAME]
    y = model.stream().feed(audio[:5])
    assert y.shape == (5, 1) and np.isfinite(y).all()
    assert named.read_bytes() == before


def test_run_and_info_through_the_cli(vad, audio, tmp_path):
    np.save(tmp_path / "audio.npy", audio)
    args = ("--constant", "sr=16000", "--dim", f"input[1]={FRAME}")
    out = run_cli("run", vad, tmp_path / "audio.npy", *args)
    assert out.returncode == 0, out.stderr
    ys = np.array([json.loads(v)["y"] for v in out.stdout.splitlines()])
    np.testing.assert_allclose(ys, raw_ort(vad, audio), rtol=0, atol=1e-6)   # printed rounded
    assert "warning: " in out.stderr and "Traceback" not in out.stderr
    missing = run_cli("run", vad, tmp_path / "audio.npy", "--constant", "sr=16000")
    assert missing.returncode == 1 and "--dim input[1]=SIZE" in missing.stderr
    info = json.loads(run_cli("info", vad, *args, "--json").stdout)
    assert info["inputs"][0]["shape"] == ["input[0]", "input[1]"]
    assert info["inferred"]["contract"]["inputs"][0]["shape"] == ["batch", FRAME]
    bad = run_cli("run", vad, tmp_path / "audio.npy", "--constant", "sr16000")
    assert bad.returncode == 2 and "'sr16000' is not NAME=VALUE" in bad.stderr


def test_bench_measures_what_it_can(vad):
    out = run_cli("bench", vad, "--constant", "sr=16000", "--dim", f"input[1]={FRAME}",
                  "--steps", "200", "--streams", "1,2", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["latency"]["stream.step"]["p50_us"] > 0 and doc["frames"] == "random frames"
    assert set(doc["pool_us_per_stream_step"]) == {"1", "2"}


def test_bench_says_why_a_part_was_skipped():
    """Silero's OpenVINO-flavoured file fixes the batch at 1: it streams, it cannot pool."""
    from tests.runtime.models import published_vad

    path = published_vad()
    if path is None:
        pytest.skip("silero-vad is not installed here")
    out = run_cli("bench", path.parent / "silero_vad_openvino_16k.onnx", "--steps", "200",
                  "--streams", "1,2", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["latency"]["stream.step"]["p50_us"] > 0
    assert "pool_us_per_stream_step" not in doc
    assert "has no batch axis" in doc["skipped"]["pool_us_per_stream_step"]
