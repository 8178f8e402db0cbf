"""Training: BPTT over whole sequences, or truncated BPTT over long streams.

``fit(task)`` trains a task's default model on its generated data and returns a
:class:`TrainResult` whose :meth:`~TrainResult.checkpoint` is ready to save. Adam (decoupled
weight decay) with warm-up and cosine decay, gradient clipping by norm, dropout from the model
config, early stopping on the validation loss (the best weights are kept), and per-epoch loss,
gradient-norm and metric logs on stderr.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelConfig, TrainConfig
from edgernn.contract import Normalization
from edgernn.deps import require
from edgernn.progress import Progress, log
from edgernn.tasks import Split, Task, TaskData
from edgernn.tasks.base import apply_normalization

torch = require("torch", "training")


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    grad_norm_mean: float
    grad_norm_max: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    model: object
    task: Task
    data: TaskData
    config: ModelConfig
    training: TrainConfig
    preprocessing: Normalization | None
    postprocessing: Normalization | None
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = ""
    test_metric: float = float("nan")
    baseline: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reached(self) -> bool:
        return self.task.reached(self.test_metric, self.data.test)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            config=self.config, state_dict=self.model.state_dict(), task=self.task.name,
            preprocessing=self.preprocessing, postprocessing=self.postprocessing,
            labels=self.data.labels, vocabulary=self.data.vocabulary,
            metrics={self.task.metric: self.test_metric, **self.baseline,
                     "epochs": len(self.history), "seconds": round(self.seconds, 2)},
            training={**asdict(self.training), "data": self.data.source})

    def summary(self) -> dict:
        return {"task": self.task.name, "model": self.config.to_dict(),
                "metric": self.task.metric, "test": self.test_metric, "baseline": self.baseline,
                "reached_threshold": self.reached, "epochs": len(self.history),
                "best_epoch": self.best_epoch, "stop_reason": self.stop_reason,
                "seconds": round(self.seconds, 2), "history": [asdict(h) for h in self.history]}


def _tensors(split: Split, pre, post):
    x, y = apply_normalization(split.x, pre), apply_normalization(split.y, post)
    return torch.from_numpy(x), torch.from_numpy(y)


def _windows(length: int, bptt: int | None):
    step = bptt or length
    return [(t, min(t + step, length)) for t in range(0, length, step)]


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def predict(model, split: Split, pre: Normalization | None, chunk: int = 256) -> np.ndarray:
    """Per-step outputs (B, T, O) of ``model`` on ``split``, as a streamed model returns them."""
    x, _ = _tensors(Split(split.x, split.x), pre, None)
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            outs.append(model.forward_steps(x[i:i + chunk])[0].numpy())
    return np.concatenate(outs)


def evaluate(model, task: Task, split: Split, pre, post) -> float:
    return task.score(predict(model, split, pre), split, post)


def fit(task: Task, data: TaskData | None = None, config: ModelConfig | None = None,
        training: TrainConfig | None = None, *, verbose: bool = True) -> TrainResult:
    training = training or task.training
    data = data or task.generate(seed=training.seed)
    config = task.fit_config(config or task.model, data)
    torch.manual_seed(training.seed)
    rng = np.random.default_rng(training.seed)
    pre, post = task.normalization(data)
    x_train, y_train = _tensors(data.train, pre, post)
    x_val, y_val = _tensors(data.val, pre, post)

    from edgernn.models import build

    model = build(config, seed=training.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr,
                            weight_decay=training.weight_decay)
    windows = _windows(x_train.shape[1], training.bptt)
    batches = math.ceil(len(x_train) / training.batch_size)
    total_steps = training.epochs * batches * len(windows)

    def lr_factor(step):
        if step < training.warmup_steps:
            return (step + 1) / training.warmup_steps
        if training.schedule == "constant":
            return 1.0
        progress = (step - training.warmup_steps) / max(1, total_steps - training.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    result = TrainResult(model=model, task=task, data=data, config=config, training=training,
                         preprocessing=pre, postprocessing=post,
                         baseline=task.baseline(data.test))
    best_loss, best_state, stale = math.inf, None, 0
    start = time.perf_counter()
    log(f"training {config.name} {config.hidden_size}x{config.num_layers} on '{task.name}' "
        f"({len(data.train)} train / {len(data.val)} val, "
        f"{'TBPTT ' + str(training.bptt) if training.bptt else 'full BPTT'})", verbose)
    for epoch in range(1, training.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        bar = Progress(batches * len(windows), f"epoch {epoch:3d}/{training.epochs}",
                       enabled=verbose)
        losses, norms = [], []
        order = rng.permutation(len(x_train))
        for b in range(batches):
            idx = torch.from_numpy(order[b * training.batch_size:(b + 1) * training.batch_size])
            xb, yb, state = x_train[idx], y_train[idx], None
            for t0_, t1_ in windows:
                out, state = model(xb[:, t0_:t1_], state)
                loss = task.loss(out, yb[:, t0_:t1_] if training.bptt else yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), training.clip_norm)
                opt.step()
                sched.step()
                state = _detach(state)
                losses.append(loss.item())
                norms.append(float(norm))
                bar.update(note=f"loss {losses[-1]:.4f}")
        model.eval()
        with torch.no_grad():
            val_loss = float(task.loss(model(x_val)[0], y_val))
        val_metric = task.score(predict(model, data.val, pre), data.val, post)
        entry = EpochLog(epoch, float(np.mean(losses)), val_loss, val_metric,
                         float(np.mean(norms)), float(np.max(norms)),
                         sched.get_last_lr()[0], time.perf_counter() - t0)
        result.history.append(entry)
        bar.close(note=f"loss {entry.train_loss:.4f} val {val_loss:.4f} "
                       f"{task.metric} {val_metric:.4f} |g| {entry.grad_norm_mean:.2f}"
                       f"/{entry.grad_norm_max:.2f} lr {entry.lr:.2e}")
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, stale, result.best_epoch = val_loss, copy.deepcopy(
                model.state_dict()), 0, epoch
        else:
            stale += 1
        if stale >= training.patience:
            result.stop_reason = f"early stop: no better validation loss for {stale} epochs"
            break
        if training.time_budget and time.perf_counter() - start > training.time_budget:
            result.stop_reason = f"time budget of {training.time_budget:g}s reached"
            break
    else:
        result.stop_reason = "all epochs done"
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    result.test_metric = evaluate(model, task, data.test, pre, post)
    log(f"done in {result.seconds:.1f}s ({result.stop_reason}); best epoch {result.best_epoch}; "
        f"test {task.metric} {result.test_metric:.4f}", verbose)
    return result
