"""Which data a later stage (validate, quantize's calibration and gate, bench) runs on.

The rule: ``--data FILE`` when given; otherwise the data the model was trained on, as its
checkpoint or contract records it -- the user's file when it is still there with the same
sha256, the built-in generator (same seed and size) for a model trained on built-in data.
Anything else stops with one message asking for ``--data`` (a usage error, exit 2). Built-in
data never stands in for the user's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.contract import DataRef
from edgernn.errors import ConfigError, DataError
from edgernn.tasks import TASKS, TaskData, get_task
from edgernn.tasks.audio import UNKNOWN
from edgernn.tasks.base import file_sha256


class DataNeeded(ConfigError):
    """The stage needs ``--data``: the recorded training data cannot be found as it was."""


def resolve_data(task_name: str, recorded: DataRef | None, data_path=None, *, stage: str,
                 model: str = "the model", features: int | None = None,
                 vocabulary: str | None = None, classes: int | None = None,
                 tokenizer=None, labels: list[str] | None = None) -> TaskData:
    """The data set for ``stage`` (e.g. "validate"), checked against the model's input. A text
    classifier's texts are read as training read them: its tokenizer, labels, columns and
    split seed."""
    text = {}
    if tokenizer is not None:
        columns = (recorded.feature_names if recorded is not None and recorded.feature_names
                   else ["text", "label"])
        text = {"tokenizer": tokenizer, "labels": labels, "text_column": columns[0],
                "label_column": columns[-1],
                "seed": (recorded.seed or 0) if recorded is not None else 0}
    elif labels and UNKNOWN in labels:
        text = {"labels": labels}      # a keyword model's words: other folders are _unknown_
    if not task_name:
        raise ConfigError(f"{model} names no task, so {stage} cannot score it on data; its "
                          f"checks run on random inputs only")
    task = get_task(task_name)
    if data_path is not None:
        data = _load(task, data_path, vocabulary, text)
    elif recorded is None:
        raise DataNeeded(f"{model} does not record the data it was trained on; pass --data "
                         f"FILE with data for {stage} ({task.data_help})")
    elif recorded.kind == "builtin":
        # a data set another task of the same kind generates: a keyword model trained before
        # keywords were spoken is on classify's built-in frames
        task = next((t for t in TASKS.values() if t.dataset == recorded.name and
                     isinstance(task, type(t))), task)
        if recorded.name != task.dataset:
            raise DataNeeded(f"{model} was trained on built-in data {recorded.name!r}, which "
                             f"task {task.name!r} does not generate; pass --data FILE")
        data = task.generate(seed=recorded.seed or 0, size=recorded.size or 1.0)
    else:
        path = Path(recorded.path)
        if not path.exists():
            raise DataNeeded(f"{model} was trained on {recorded.path}, which is not there any "
                             f"more; pass --data FILE with the data to {stage} on")
        now = file_sha256(path)
        if now != recorded.sha256:
            raise DataNeeded(f"{model} was trained on {recorded.path} (sha256 "
                             f"{recorded.sha256[:12]}...), which has changed since (sha256 now "
                             f"{now[:12]}...); pass --data FILE with the data to {stage} on")
        data = _load(task, path, vocabulary, text)
    _check_fits(data, features, classes, model, stage)
    return data


def _load(task, path, vocabulary: str | None, text: dict) -> TaskData:
    if text:
        return task.load(path, **text)
    if vocabulary is not None and hasattr(task, "load_with_vocabulary"):
        return task.load_with_vocabulary(path, vocabulary)
    return task.load(path)


def _check_fits(data: TaskData, features: int | None, classes: int | None, model: str,
                stage: str) -> None:
    x = data.train.x
    if features is not None and x.dtype.kind == "f" and x.shape[-1] != features:
        raise DataError(f"{data.ref.describe()} has {x.shape[-1]} features per frame but "
                        f"{model} takes {features}; pass the data it was trained on "
                        f"(--data) to {stage}")
    if classes is not None and data.test.y.ndim == 1:
        top = int(max(np.max(s.y) for s in (data.train, data.val, data.test)))
        if top >= classes:
            raise DataError(f"{data.ref.describe()} has label {top} but {model} has "
                            f"{classes} classes; pass the data it was trained on (--data)")


def data_for_contract(contract, data_path=None, *, stage: str, model: str) -> TaskData | None:
    """:func:`resolve_data` for an artifact, from what its contract says; None when the model
    names no task (a module edgernn did not train) and no ``--data`` was given."""
    if not contract.task and data_path is None:
        return None
    frame = contract.inputs[0].shape[-1]
    features = frame if contract.inputs[0].dtype.startswith("float") and isinstance(
        frame, int) else None
    classes = None
    if contract.head in ("classify_last", "classify_step"):
        out = contract.outputs[0].shape[-1]
        classes = out if isinstance(out, int) else None
    return resolve_data(contract.task, contract.dataset, data_path, stage=stage, model=model,
                        features=features, vocabulary=contract.vocabulary, classes=classes,
                        tokenizer=contract.tokenizer, labels=contract.labels)


def data_for_checkpoint(ckpt, data_path=None, *, stage: str, model: str) -> TaskData | None:
    """:func:`resolve_data` for a checkpoint; None when it names no task and no ``--data``."""
    if not ckpt.task and data_path is None:
        return None
    cfg = ckpt.config
    width = ckpt.audio.fbank.hop if ckpt.audio is not None else cfg.input_size  # samples a hop
    return resolve_data(ckpt.task, ckpt.dataset, data_path, stage=stage, model=model,
                        features=None if cfg.tokens else width,
                        vocabulary=ckpt.vocabulary,
                        classes=cfg.output_size if cfg.head.startswith("classify") else None,
                        tokenizer=ckpt.tokenizer, labels=ckpt.labels)
