"""Loading: contracts, contract-less files, providers, profiles, bad files."""

import warnings

import numpy as np
import pytest

from edgernn.errors import ConfigError, ModelError
from edgernn.runtime import (InferredContractWarning, ProviderFallbackWarning, contract_of,
                             load, open_session)


def test_load_from_path_and_bytes(models):
    a = load(models / "lstm_step.onnx")
    b = load((models / "lstm_step.onnx").read_bytes())
    assert a.fingerprint == b.fingerprint and a.graph == "step"
    assert [s.name for s in a.states] == ["h", "c"] and a.labels == ["low", "mid", "high"]
    assert a.providers == ["CPUExecutionProvider"]
    assert "lstm_step.onnx" in repr(a)


def test_contract_less_model_is_inferred_and_says_so(models):
    with pytest.warns(InferredContractWarning, match=r"state pairs inferred from names and "
                                                      r"shapes: h0 -> hn; data input input"):
        model = load(models / "no_contract.onnx")
    assert model.graph == "chunk" and model.states[0].input == "h0"
    stream = model.stream()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    whole = stream.feed(x)
    stream.reset()
    steps = np.concatenate([stream.feed(x[:2]), stream.feed(x[2:])])
    np.testing.assert_allclose(steps, whole, rtol=0, atol=1e-6)


def test_contract_less_model_with_named_states(models):
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # naming the states is silent
        model = load(models / "no_contract.onnx", states={"h0": "hn"})
    assert model.inferred.startswith("state pairs as given")


def test_unknown_state_name_is_refused(models):
    with pytest.raises(ModelError, match=r"state pair 'h_in' -> 'hn' is not in the model; "
                                         r"inputs are input, h0"):
        load(models / "no_contract.onnx", states={"h_in": "hn"})


def test_unknown_constant_is_refused(models):
    with pytest.raises(ModelError, match="constants name input.s. sr that the model does not"):
        load(models / "no_contract.onnx", constants={"sr": 16000})


def test_a_model_that_is_not_recurrent(models):
    with pytest.raises(ModelError, match="found no state pairs .* it does not look recurrent"):
        load(models / "not_recurrent.onnx")


@pytest.mark.parametrize("data", [b"", b"\x08\x07this is not onnx", b"\x00" * 100])
def test_a_corrupt_file(tmp_path, data):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelError, match="ONNX Runtime cannot load .*not a valid ONNX model or "
                                         "is corrupt"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="model file .*none.onnx does not exist"):
        load(tmp_path / "none.onnx")


def test_unavailable_provider_falls_back_with_one_warning(models):
    with pytest.warns(ProviderFallbackWarning) as record:
        model = load(models / "lstm_step.onnx", providers=["CUDAExecutionProvider"])
    assert len(record) == 1
    assert "CUDAExecutionProvider not available" in str(record[0].message)
    assert model.providers == ["CPUExecutionProvider"]


def test_profile_sets_threads_and_providers(models):
    model = load(models / "lstm_step.onnx", profile="x86-cpu")
    assert model.profile == "x86-cpu" and model.providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="unknown device profile 'toaster'"):
        load(models / "lstm_step.onnx", profile="toaster")


def test_metadata_helpers(models):
    session = open_session(models / "lstm_chunk.onnx")
    assert contract_of(session).graph == "chunk"
    assert contract_of(open_session(models / "no_contract.onnx")) is None


def test_cuda_keeps_state_on_the_gpu(models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no CUDA execution provider in this onnxruntime build / machine")
    gpu = load(models / "lstm_step.onnx", providers=["CUDAExecutionProvider"])
    cpu = load(models / "lstm_step.onnx")
    stream = gpu.stream()
    assert stream._engine.device == "cuda"
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_allclose(stream.feed(x), cpu.stream().feed(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(threads=0), "threads must be a positive int"),
    (dict(threads=-1), "threads must be a positive int"),
    (dict(threads="2"), "threads must be a positive int"),
    (dict(threads=True), "threads must be a positive int"),
    (dict(providers=[3]), "providers must be a provider name or a list"),
    (dict(profile=3), "profile must be a profile name"),
    (dict(states="h0"), "states must map state inputs to outputs"),
    (dict(constants=[1]), "constants must map input names to values"),
])
def test_arguments_are_checked_and_errors_name_them(models, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load(models / "lstm_step.onnx", **kwargs)
    with pytest.raises(ConfigError, match="takes a path or the model's bytes"):
        load(3)


def test_a_providers_string_is_one_provider(models):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no warning per character
        model = load(models / "lstm_step.onnx", providers="CPUExecutionProvider")
    assert model.providers == ["CPUExecutionProvider"]


def test_empty_step_many_and_step_return_empty_results(models):
    pool = load(models / "lstm_step.onnx").pool()
    assert pool.step({}) == {}
    out = pool.step_many([], np.zeros((0, 4), np.float32))
    assert out.shape == (0, 3)


def test_saving_where_it_cannot_write_is_a_snapshot_error(models, tmp_path):
    from edgernn.errors import SnapshotError

    stream = load(models / "lstm_step.onnx").stream()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SnapshotError, match="cannot write the snapshot to"):
        stream.save(tmp_path / "file" / "s.state")
