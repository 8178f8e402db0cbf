"""Does an artifact compute what PyTorch computes? Every output, every state, every way of
driving it, over a long horizon, and on the task's own metric -- on the model's own data.

``validate(reference, artifacts)`` checks each artifact and returns one
:class:`~edgernn.exporters.checks.report.ValidationReport` listing every tensor's error
(collect, then judge: a failure in one place never hides the others). The task data is the
model's own (``data=FILE``, else what the checkpoint records: see
:mod:`edgernn.tasks.resolve`), its whole test split; the metric check knows the test size.
"""

from __future__ import annotations

import os

import numpy as np

from edgernn.errors import ConfigError, ModelError
from edgernn.exporters.checks.parity import (batched, compare, drive, expected_states,
                                             random_splits, spans, whole_lengths, within)
from edgernn.exporters.from_torch.source import Source, resolve
from edgernn.exporters.checks.report import (ArtifactReport, Check, Drift, Tolerances,
                                                 ValidationReport, plot, record)
from edgernn.progress import stage
from edgernn.runtime.model import Model, load
from edgernn.tasks.compare import compare_metric

__all__ = ["Tolerances", "ValidationReport", "plot", "record", "validate", "validate_artifact"]


def _tensors(check: str, contract, got_y, got_states, want_y, want_states, atol,
             names: list[str]) -> Check:
    if want_y.ndim < got_y.ndim:          # the model answers once per sequence: the last step
        got_y = got_y[:, -1]
    want_states = expected_states(contract, names, want_states)
    errors = [compare("y", "output", got_y, want_y, *atol)]
    errors += [compare(s.name, "state", got_states[s.name], w, *atol)
               for s, w in zip(contract.states, want_states)]
    return Check(check, errors)


def _stream_mixed(model: Model, x: np.ndarray, rng) -> np.ndarray:
    """One stream through the runtime API, in a random mix of step() and feed() calls."""
    stream = model.stream()
    outs = []
    for a, b in spans(x.shape[0], random_splits(x.shape[0], rng, 6)):
        outs.append(stream.step(x[a])[None] if b - a == 1 else stream.feed(x[a:b]))
    return np.concatenate(outs), stream.state


def _reference_evaluator(model_path_or_bytes, model: Model, x: np.ndarray, atol) -> Check:
    import onnx
    from onnx.reference import ReferenceEvaluator

    proto = (onnx.load_from_string(model_path_or_bytes)
             if isinstance(model_path_or_bytes, bytes) else onnx.load(model_path_or_bytes))
    evaluator = ReferenceEvaluator(proto)
    states = model.initial_state(x.shape[0])
    feeds = {model.input.name: x, **{s.input: states[s.name] for s in model.states}}
    want = evaluator.run(None, feeds)
    got_y, got_states = model.run(x, states)
    errors = [compare("y", "output", got_y, want[0], *atol)]
    errors += [compare(s.name, "state", got_states[s.name], want[1 + i], *atol)
               for i, s in enumerate(model.states)]
    return Check("onnx.reference (ORT vs evaluator)", errors)


def _check_same_model(src: Source, model: Model, name) -> None:
    """The reference must be the artifact's model: same frame, same states (the compact form
    keeps each state's axes merged)."""
    frame = list(model.input.shape[1 if model.graph == "step" else 2:])
    want_frame = list(src.example.shape[2:])
    theirs = [[d for d in s.shape if d != "batch"] for s in model.states]
    ours = [list(s) for s in src.state_shapes] if model.contract.streamable else []
    size = lambda shapes: sum(int(np.prod(s)) for s in shapes)     # noqa: E731  (any layout)
    same = frame == want_frame and size(theirs) == size(ours)
    if not same:
        raise ModelError(f"{src.name} is not the model of {name}: it takes frames {want_frame} "
                         f"and keeps states {ours}, the file takes {frame} and keeps {theirs}. "
                         f"Pass the checkpoint (or module) the file was exported from")
    src.check_weights_of(model.contract, name, "pass the checkpoint (or module) the file was "
                                               "exported from")


def _window(model: Model, x: np.ndarray) -> np.ndarray:
    """A short input the artifact takes in one call: one step, or a few steps."""
    return np.ascontiguousarray(x[:, 0] if model.graph == "step" else x[:, :5])


class _TaskInput:
    """The model's own test data (frames in the data's units, as the artifact and the
    reference both take them), and the reference's answers."""

    def __init__(self, src: Source, task, data, tolerances: Tolerances):
        self.task, self.data, self.tolerances, self.names = task, data, tolerances, \
            src.state_names
        self.split, self.ref = data.part("test")
        self.x = np.ascontiguousarray(self.split.x)
        self.lengths = whole_lengths(not src.bidirectional, self.split)
        self.want_y, self.want_states = batched(src.reference, self.x, lengths=self.lengths)

    def check(self, model: Model, report: ArtifactReport, atol: tuple) -> None:
        got_y, got_states = batched(lambda x: drive(model, x), self.x,
                                    {s.name: s.batch_axis for s in model.states}, self.lengths)
        report.checks.append(_tensors(f"task data ({self.x.shape[0]}x{self.x.shape[1]})",
                                      model.contract, got_y, got_states, self.want_y,
                                      self.want_states, atol, self.names))
        if got_y.ndim == self.want_y.ndim:
            report.metric = compare_metric(self.task, self.want_y, got_y, self.split, None,
                                           self.tolerances.max_drop)


def validate_artifact(src: Source, artifact, *, task=None, data=None,
                      tolerances: Tolerances = Tolerances(), batch: int = 4, steps: int = 50,
                      horizon: int = 10_000, seed: int = 0,
                      task_input: _TaskInput | None = None) -> ArtifactReport:
    model = load(artifact)
    name = artifact if isinstance(artifact, (str, os.PathLike)) else "<bytes>"
    stage(f"validate {name}: random inputs, stream splits, task data, drift over {horizon} "
          f"steps, onnx.reference")
    _check_same_model(src, model, name)
    report = ArtifactReport(str(name), model.graph, check_metric=tolerances.check_metric)
    rng = np.random.default_rng(seed)
    atol = (tolerances.atol, tolerances.rtol)         # (atol, rtol): see parity.within

    # 1. seeded random inputs, driven as the graph allows (step by step / one chunk / whole)
    x = src.random_input(batch, steps, rng)
    want_y, want_states = src.reference(x)
    got_y, got_states = drive(model, x)
    names = src.state_names
    report.checks.append(_tensors(f"random B={batch} T={steps}", model.contract, got_y,
                                  got_states, want_y, want_states, atol, names))
    if model.contract.streamable:
        # 2. random chunk splits (chunk graphs), and one stream through the runtime's API
        if model.graph == "chunk":
            got_y, got_states = drive(model, x, random_splits(steps, rng))
            report.checks.append(_tensors("random chunk splits", model.contract, got_y,
                                          got_states, want_y, want_states, atol, names))
        one_y, one_state = _stream_mixed(model, x[0], rng)
        report.checks.append(_tensors("stream step()/feed() mix", model.contract,
                                      one_y[None], one_state, want_y[:1],
                                      [w[:1] for w in want_states], atol, names))
    # 3. the model's own test data, whole, and its metric against PyTorch's
    if task_input is not None:
        task_input.check(model, report, atol)
    # 4. drift over a long horizon of a realistic stream, state fed back every step (reset
    #    where the task's device would reset it: per keyword clip, per sequence of the data)
    if model.contract.streamable and horizon > 0:
        if task is not None:
            xs, lengths = task.drift_input(data, horizon, seed)
            what = task.drift_description(data)
        else:
            xs, lengths, what = src.random_input(1, horizon, rng), None, "random input"
        want_y, _ = src.reference(xs)
        got_y, _ = drive(model, xs)
        if got_y.ndim == want_y.ndim:
            err = np.abs(got_y.astype(np.float64) - want_y)
            err = err.reshape(*err.shape[:2], -1).max(-1)                    # (segments, T)
            if lengths is not None:
                err = err[np.arange(err.shape[1])[None, :] < lengths[:, None]]
            curve = err.reshape(-1)
            ok = within(got_y.astype(np.float64), want_y, tolerances.drift, tolerances.rtol)
            if lengths is not None:
                ok = ok.reshape(*ok.shape[:2], -1).all(-1)[
                    np.arange(ok.shape[1])[None, :] < lengths[:, None]]
            report.drift = Drift(curve.size, curve, tolerances.drift, what, tolerances.rtol,
                                 bool(ok.all()))
    # 5. an independent third opinion on a short window
    source = artifact if isinstance(artifact, bytes) else os.fspath(artifact)
    report.checks.append(_reference_evaluator(source, model, _window(model, x),
                                              (tolerances.evaluator, tolerances.rtol)))
    return report


def validate(reference, artifacts, *, example_input=None, tolerances: Tolerances | None = None,
             batch: int = 4, steps: int = 50, horizon: int = 10_000, seed: int = 0,
             task_data: bool = True, data=None, state_layout=None) -> ValidationReport:
    """Compare each artifact (path or bytes) with ``reference`` (checkpoint or nn.Module).

    ``data`` (a file) is the data to check on; without it, the data the checkpoint records.
    """
    if not artifacts:
        raise ConfigError("validate needs at least one ONNX artifact to check")
    tolerances = tolerances or Tolerances()
    src = resolve(reference, example_input, state_layout)
    ckpt = src.checkpoint
    task = dataset = task_input = None
    if task_data and (ckpt is not None or data is not None):
        from edgernn.tasks import get_task
        from edgernn.tasks.resolve import data_for_checkpoint

        if ckpt is None:
            raise ConfigError("data= needs a checkpoint: a plain module names no task to score")
        dataset = data_for_checkpoint(ckpt, data, stage="validate", model=src.name)
        if dataset is not None:
            stage(f"validate: PyTorch on the test split of {dataset.ref.describe()}")
            task = get_task(ckpt.task)
            task_input = _TaskInput(src, task, dataset, tolerances)
    reports = [validate_artifact(src, a, task=task, data=dataset, tolerances=tolerances,
                                 batch=batch, steps=steps, horizon=horizon, seed=seed,
                                 task_input=task_input)
               for a in artifacts]
    return ValidationReport(src.name, task.name if task else "", task.metric if task else "",
                            tolerances, reports, task_input.ref if task_input else None)
