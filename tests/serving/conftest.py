"""Models and real tritonserver processes for the serving tests (loopback only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tritonclient.grpc", reason="the serving tests need pip install "
                                                "'edgernn[serve]'")

from edgernn.serving import Options, Server, write_repository  # noqa: E402

FRAME = 5


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory) -> dict[str, Path]:
    """fp32 step graphs of each cell (compact, lean), two int8 ones, a GRU behind edgernn's
    audio front end, and Silero VAD's published stateful model (when its package is
    installed)."""
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.contract import Normalization
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build
    from tests.runtime.models import published_vad

    d = tmp_path_factory.mktemp("serve-models")
    out: dict[str, Path] = {}
    for cell, layers in (("lstm", 2), ("gru", 1), ("rnn", 3)):
        cfg = ModelConfig(cell=cell, input_size=FRAME, hidden_size=16, num_layers=layers,
                          output_size=3, head="classify_step")
        ckpt = save_checkpoint(d / f"{cell}.pt", Checkpoint(
            config=cfg, state_dict=build(cfg, seed=2).state_dict(),
            preprocessing=Normalization([0.5] * FRAME, [2.0] * FRAME)))
        out[cell] = export(ckpt, d / f"{cell}.onnx").path
        out[f"{cell}_lean"] = export(ckpt, d / f"{cell}_lean.onnx", ops="lean").path
    out["int8"] = d / "int8.onnx"
    quantize(out["lstm"], out["int8"], recurrent="int8", force=True, measure_latency=False,
             gate=Gate(horizon=200, check_metric=False))
    out["int8_lean"] = d / "int8_lean.onnx"          # one ai.edgernn node per layer
    quantize(out["lstm_lean"], out["int8_lean"], recurrent="int8", force=True,
             measure_latency=False, gate=Gate(horizon=200, check_metric=False))
    # a model that hears: 160 samples a step through the front end, the overlap as state
    from edgernn.frontend import Fbank
    from edgernn.tasks.audio import AudioFeatures

    cfg = ModelConfig(cell="gru", input_size=40, hidden_size=16, num_layers=1, output_size=2,
                      head="classify_step")
    ckpt = save_checkpoint(d / "audio.pt", Checkpoint(
        config=cfg, state_dict=build(cfg, seed=3).state_dict(), labels=["silence", "speech"],
        audio=AudioFeatures(Fbank(), Normalization([-8.0] * 40, [3.0] * 40))))
    out["audio"] = export(ckpt, d / "audio.onnx").path
    vad = published_vad()
    if vad is not None:
        out["silero"] = vad
    return out


def frames(seed: int, steps: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, 2.0, (steps, FRAME)).astype(np.float32)


def repository(folder: Path, models: dict[str, Path], **options) -> Path:
    """A Python-backend repository holding ``models`` ({name in the server: file})."""
    for name, path in models.items():
        write_repository(path, folder, Options(name=name, **options))
    return folder


@pytest.fixture(scope="module")
def server(serve_models, tmp_path_factory):
    """One server for a module: fp32 (2 instances), int8 (plain operators and edgernn's cell
    nodes), a model with a 1 s idle timeout, and one that takes audio."""
    repo = tmp_path_factory.mktemp("repo")
    write_repository(serve_models["lstm"], repo, Options(name="fp32", instances=2))
    write_repository(serve_models["int8"], repo, Options(name="int8"))
    write_repository(serve_models["int8_lean"], repo, Options(name="int8_lean"))
    write_repository(serve_models["gru"], repo, Options(name="idle", idle_seconds=1.0))
    write_repository(serve_models["audio"], repo, Options(name="audio"))
    log = open(repo / "server.log", "wb")
    with Server(repo, log=log, exit_seconds=1).start() as s:
        yield s
    log.close()
