"""Checkpoints: config, weights, normalisation, labels or vocabulary, task and metrics.

Saved with ``torch.save`` as plain containers and tensors, and loaded with
``torch.load(..., weights_only=True)``: loading a checkpoint never runs arbitrary pickle code.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgernn.config import ModelConfig
from edgernn.vocab import Vocabulary
from edgernn.contract import DataRef, Normalization
from edgernn.deps import require
from edgernn.errors import CheckpointError, ConfigError, ContractError
from edgernn.files import atomic_write_bytes

CHECKPOINT_KIND = "edgernn.checkpoint"
CHECKPOINT_FORMAT = 1


@dataclass
class Checkpoint:
    config: ModelConfig
    state_dict: dict
    task: str = ""
    preprocessing: Normalization | None = None
    postprocessing: Normalization | None = None
    labels: list[str] | None = None
    vocabulary: str | None = None
    tokenizer: object = None                 # a Vocabulary (text classifiers): texts to ids
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    edgernn_version: str = ""
    dataset: DataRef | None = None           # the data it was trained on
    difference: Normalization | None = None  # forecast: it models changes with these statistics
    audio: object = None                     # AudioFeatures: it reads samples through a front end

    def build_model(self):
        """The network with these weights, in eval mode."""
        from edgernn.models import build

        model = build(self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def weights_sha256(self) -> str:
        return weights_sha256(self.state_dict)


def weights_sha256(state_dict: dict) -> str:
    """A hash of the weights, independent of how they were saved."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    torch = require("torch", "saving a checkpoint")
    from edgernn import __version__

    payload = {
        "kind": CHECKPOINT_KIND,
        "format": CHECKPOINT_FORMAT,
        "edgernn_version": __version__,
        "config": ckpt.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in ckpt.state_dict.items()},
        "task": ckpt.task,
        "preprocessing": asdict(ckpt.preprocessing) if ckpt.preprocessing else None,
        "postprocessing": asdict(ckpt.postprocessing) if ckpt.postprocessing else None,
        "labels": list(ckpt.labels) if ckpt.labels else None,
        "vocabulary": ckpt.vocabulary,
        "tokenizer": ckpt.tokenizer.to_dict() if ckpt.tokenizer is not None else None,
        "metrics": dict(ckpt.metrics),
        "training": dict(ckpt.training),
        "dataset": asdict(ckpt.dataset) if ckpt.dataset else None,
        "difference": asdict(ckpt.difference) if ckpt.difference else None,
        "audio": ckpt.audio.to_dict() if ckpt.audio is not None else None,
    }
    path = Path(path)
    save_torch(payload, path)
    return path


def save_torch(payload: dict, path) -> None:
    """``torch.save`` to memory, then one atomic write: a full disk or a failed write is an
    OSError naming the file (torch's writer reports it as an internal RuntimeError), and the
    previous file stays as it was."""
    import io

    torch = require("torch", "saving a checkpoint")
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def _payload(path: Path):
    torch = require("torch", "loading a checkpoint")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with "
                              f"'edgernn train -o {path}'")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusal, truncated zip, not a torch file at all...
        raise CheckpointError(f"{path} is not a readable edgernn checkpoint (it is corrupt, "
                              f"truncated, or not a checkpoint: {type(exc).__name__}). Re-create "
                              f"it with 'edgernn train'") from None
    return payload


def checkpoint_kind(path: str | Path) -> str:
    """``"seq2seq"`` for an encoder-decoder checkpoint, ``"recurrent"`` for edgernn's frame
    models; CheckpointError for anything else."""
    payload = _payload(Path(path))
    if isinstance(payload, dict) and payload.get("kind") == "seq2seq":
        return "seq2seq"
    load_checkpoint(path)
    return "recurrent"


def load_seq2seq(path: str | Path):
    """An encoder-decoder checkpoint (:class:`~edgernn.seq2seq.Seq2SeqCheckpoint`)."""
    payload = _payload(Path(path))
    if not isinstance(payload, dict) or payload.get("kind") != "seq2seq":
        raise CheckpointError(f"{path} is not a seq2seq checkpoint; train one with 'edgernn "
                              f"train --task seq2seq'")
    from edgernn.seq2seq import from_payload

    return from_payload(payload, str(path))


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    payload = _payload(path)
    if isinstance(payload, dict) and payload.get("kind") == "seq2seq":
        raise CheckpointError(f"{path} is an encoder-decoder (seq2seq) checkpoint; 'edgernn "
                              f"export' writes its encoder and decoder, which 'edgernn run' "
                              f"decodes. This step takes frame models only")
    if not isinstance(payload, dict) or payload.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is a torch file but not an edgernn checkpoint; create one "
                              f"with 'edgernn train'")
    fmt = payload.get("format")
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {fmt!r}, newer than the "
                              f"{CHECKPOINT_FORMAT} this edgernn reads (it was written by edgernn "
                              f"{payload.get('edgernn_version', '?')}); upgrade edgernn")
    try:
        config = ModelConfig.from_dict(payload["config"])
        ckpt = Checkpoint(
            config=config,
            state_dict=payload["state_dict"],
            task=payload.get("task") or "",
            preprocessing=_norm(payload.get("preprocessing")),
            postprocessing=_norm(payload.get("postprocessing")),
            labels=payload.get("labels"),
            vocabulary=payload.get("vocabulary"),
            tokenizer=(Vocabulary.from_dict(payload["tokenizer"], "tokenizer")
                       if payload.get("tokenizer") else None),
            metrics=payload.get("metrics") or {},
            training=payload.get("training") or {},
            edgernn_version=payload.get("edgernn_version", ""),
            dataset=(DataRef.from_dict(payload["dataset"], "checkpoint dataset")
                     if payload.get("dataset") else None),
            difference=_norm(payload.get("difference")),
            audio=_audio(payload.get("audio")),
        )
        ckpt.build_model()  # the weights must fit the config
    except (KeyError, TypeError, ConfigError, ContractError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is damaged: {type(exc).__name__}: {exc}") from None
    return ckpt


def _audio(d):
    if d is None:
        return None
    from edgernn.tasks.audio import AudioFeatures

    return AudioFeatures.from_dict(d, "checkpoint audio")


def _norm(d):
    return None if d is None else Normalization.from_dict(d, "checkpoint normalization")
