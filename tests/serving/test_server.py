"""Against a real tritonserver (a subprocess on 127.0.0.1, Python-backend repository):
concurrent interleaved sequences equal local streams, START/END/idle semantics, bad requests
isolated, a killed and restarted server, and two servers behind the client's sticky router.

Tolerances: Triton batches frames of different sequences into one ONNX Runtime call; batched
and one-row fp32 kernels may round differently by ~1e-7, so outputs are held to 1e-6. int8
files take the same path (their integer products are exact), so they are held to 1e-6 too; the
lean int8 file's cell nodes run edgernn's kernels in the server's Python backend as they do
locally (rows computed alone), so it is held to 1e-6 as well."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from edgernn.errors import DataError, ModelError, StreamingError
from edgernn.runtime import load
from edgernn.runtime.remote import connect
from edgernn.serving import Server
from tests.serving.conftest import frames, repository
from tests.tolerances import BATCHED_EXACT

SEQUENCES, STEPS, THREADS = 256, 60, 16


def drive(remote, data: dict[int, np.ndarray], threads: int = THREADS) -> dict:
    """Each thread owns some sequences and steps them round-robin, so requests of all
    sequences interleave on the server."""
    keys = sorted(data)
    out, errors = {}, []

    def work(mine):
        try:
            streams = {k: remote.stream() for k in mine}
            ys = {k: [] for k in mine}
            for t in range(len(data[mine[0]])):
                for k in mine:
                    ys[k].append(streams[k].step(data[k][t]))
            for k in mine:
                streams[k].close()
                out[k] = np.array(ys[k])
        except Exception as exc:                                  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(keys[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=240)
    assert not errors, errors[:3]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name,which", [("fp32", "lstm"), ("int8", "int8"),
                                        ("int8_lean", "int8_lean")])
def test_interleaved_sequences_equal_local_streams(server, serve_models, name, which):
    data = {k: frames(k, STEPS) for k in range(SEQUENCES)}
    served = drive(connect(server.grpc_url, name), data)
    model = load(serve_models[which])
    worst = max(float(np.abs(served[k] - model.stream().feed(x)).max()) for k, x in data.items())
    assert worst <= BATCHED_EXACT, worst


def test_audio_streams_carry_the_window_overlap_as_implicit_state(server, serve_models):
    """Real speech in 10 ms hops, 8 sequences interleaved (each starting at its own offset of
    the recording): the front end's overlap (audio_tail) is the server's implicit state beside
    the GRU's, so each sequence's outputs equal its local stream's."""
    from tests import audiodata

    speech = audiodata.recording()
    data = {k: speech[k * 4000:k * 4000 + 40 * 160].reshape(40, 160) for k in range(8)}
    served = drive(connect(server.grpc_url, "audio"), data, threads=4)
    model = load(serve_models["audio"])
    assert [s.name for s in model.contract.states] == ["h0", "audio_tail"]
    worst = max(float(np.abs(served[k] - model.stream().feed(x)).max()) for k, x in data.items())
    assert worst <= BATCHED_EXACT, worst


def test_start_resets_the_sequence(server):
    remote = connect(server.grpc_url, "fp32")
    x = frames(1, 10)
    stream = remote.stream()
    first = stream.feed(x)
    stream.reset()
    np.testing.assert_array_equal(stream.feed(x), first)
    stream.close()


def test_end_frees_the_sequence(server):
    remote = connect(server.grpc_url, "fp32")
    stream = remote.stream()
    stream.step(frames(2, 1)[0])
    stream.close()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    x = grpcclient.InferInput(remote.input["name"], [1, 5], "FP32")
    x.set_data_from_numpy(frames(2, 1))
    with pytest.raises(grpcclient.InferenceServerException, match="START"):
        client.infer("fp32", [x], sequence_id=stream.sequence_id)
    with pytest.raises(StreamingError, match="closed"):
        stream.step(frames(2, 1)[0])


def test_an_idle_sequence_is_released_with_a_clear_error(server):
    import time

    remote = connect(server.grpc_url, "idle")                      # idle timeout 1 s
    idle, busy = remote.stream(), remote.stream()
    x = frames(3, 12)
    want = load(remote_file(server, "idle")).stream().feed(x)
    idle.step(x[0])
    got = []
    for t in range(12):                                           # busy keeps stepping
        got.append(busy.step(x[t]))
        time.sleep(0.2)
    np.testing.assert_allclose(np.array(got), want, atol=BATCHED_EXACT)
    with pytest.raises(StreamingError, match="START"):
        idle.step(x[1])
    idle.reset()                                                  # starts afresh
    np.testing.assert_allclose(idle.step(x[0]), want[0], atol=BATCHED_EXACT)


def remote_file(server, name):
    return server.repository / name / "1" / "model.onnx"


def test_bad_requests_get_clear_errors_and_leave_other_sequences_alone(server, serve_models):
    remote = connect(server.grpc_url, "fp32")
    x = frames(4, 6)
    want = load(serve_models["lstm"]).stream().feed(x)
    good = remote.stream()
    got = [good.step(x[0])]
    bad = remote.stream()
    bad.step(x[0])
    with pytest.raises(DataError, match="shape"):                 # caught before sending
        bad.step(np.zeros(7, np.float32))
    with pytest.raises(DataError, match="NaN"):
        bad.step(np.full(5, np.nan, np.float32))
    client = grpcclient.InferenceServerClient(server.grpc_url)

    def raw(array, dtype, sequence_id, model="fp32"):
        inp = grpcclient.InferInput(remote.input["name"], list(array.shape), dtype)
        inp.set_data_from_numpy(array)
        return client.infer(model, [inp], sequence_id=sequence_id, sequence_start=True)

    with pytest.raises(grpcclient.InferenceServerException, match="NaN"):   # from the model
        raw(np.full((1, 5), np.nan, np.float32), "FP32", 99001)
    with pytest.raises(grpcclient.InferenceServerException, match="shape|dims"):   # Triton
        raw(np.zeros((1, 7), np.float32), "FP32", 99002)
    with pytest.raises(grpcclient.InferenceServerException, match="data-type|datatype|INT64"):
        raw(np.zeros((1, 5), np.int64), "INT64", 99003)
    with pytest.raises(ModelError, match="no model 'nope'"):
        connect(server.grpc_url, "nope")
    for t in range(1, 6):
        got.append(good.step(x[t]))
    np.testing.assert_allclose(np.array(got), want, atol=BATCHED_EXACT)


def test_a_server_with_several_models_needs_a_name(server):
    names = sorted(p.name for p in server.repository.iterdir() if (p / "config.pbtxt").exists())
    with pytest.raises(ModelError, match=rf"serves {len(names)} ready models "
                       rf"\({', '.join(names)}\).*model="):
        connect(server.grpc_url)


def test_a_killed_server_is_a_clear_error_and_a_restarted_one_serves_new_sequences(
        serve_models, tmp_path):
    repo = repository(tmp_path, {"only": serve_models["gru"]})
    model = load(serve_models["gru"])
    x = frames(5, 8)
    with open(tmp_path / "log", "wb") as log:
        first = Server(repo, log=log, exit_seconds=1).start()
        remote = connect(first.grpc_url)                          # the one model, by itself
        stream = remote.stream()
        stream.feed(x[:4])
        first.kill()
        with pytest.raises(StreamingError, match="not reachable.*reset"):
            stream.step(x[4])
        again = Server(repo, grpc_port=first.grpc_port, http_port=first.http_port,
                       metrics_port=first.metrics_port, log=log, exit_seconds=1).start()
        try:
            with pytest.raises(StreamingError, match="START"):    # its state died with it
                stream.step(x[4])
            stream.reset()
            np.testing.assert_allclose(stream.feed(x), model.stream().feed(x), atol=BATCHED_EXACT)
            fresh = remote.stream()
            np.testing.assert_allclose(fresh.feed(x), model.stream().feed(x), atol=BATCHED_EXACT)
        finally:
            again.stop()
            first.stop()


def test_two_servers_behind_the_sticky_router(serve_models, tmp_path):
    model = load(serve_models["lstm"])
    servers = []
    with open(tmp_path / "log", "wb") as log:
        try:
            for i in range(2):
                repo = repository(tmp_path / f"repo{i}", {"m": serve_models["lstm"]})
                servers.append(Server(repo, log=log, exit_seconds=1).start())
            remote = connect([s.grpc_url for s in servers])
            data = {k: frames(100 + k, 30) for k in range(32)}
            served = drive(remote, data, threads=8)
            for k, xs in data.items():
                np.testing.assert_allclose(served[k], model.stream().feed(xs), atol=BATCHED_EXACT)
            # every sequence stuck to one server: a step sent anywhere else would have been
            # refused (no START there); each server counted only its own sequences' steps
            counts = [inference_count(s, "m") for s in servers]
            assert sum(counts) == 32 * 31                       # 30 steps + the END request
            assert all(c > 0 for c in counts), counts
        finally:
            for s in servers:
                s.stop()


def inference_count(server, name) -> int:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    stats = client.get_inference_statistics(name, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0))


def test_a_published_stateful_model_served_with_its_state_mapping(serve_models, tmp_path):
    """Silero VAD (not made by edgernn): state pair, sample-rate constant and frame size given
    as `edgernn triton` takes them; 30 chunks of audio from the server equal local streams."""
    if "silero" not in serve_models:
        pytest.skip("silero-vad is not installed")
    from edgernn.serving import Options, write_repository

    kwargs = {"states": {"state": "stateN"}, "constants": {"sr": 16000},
              "dims": {"input[1]": 512}}
    write_repository(serve_models["silero"], tmp_path / "repo", Options(name="vad"),
                     load_kwargs=kwargs)
    local = load(serve_models["silero"], **kwargs)
    audio = np.random.default_rng(8).normal(0, 0.1, (30, 512)).astype(np.float32)
    with open(tmp_path / "log", "wb") as log:
        with Server(tmp_path / "repo", log=log, exit_seconds=1).start() as server:
            streams = [connect(server.grpc_url).stream() for _ in range(3)]
            for k, s in enumerate(streams):                     # interleaved sequences
                s.step(audio[k])
            got = [s.feed(audio[3:]) for s in streams]
            for s in streams:
                s.close()
    for k, g in enumerate(got):
        ref = local.stream()
        ref.step(audio[k])
        np.testing.assert_allclose(g, ref.feed(audio[3:]), atol=BATCHED_EXACT)
