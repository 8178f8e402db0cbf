"""Training: BPTT over whole sequences, or truncated BPTT over long streams.

``fit(task, data)`` trains a model on a task's data (the user's or a built-in data set) and
returns a :class:`TrainResult` whose :meth:`~TrainResult.checkpoint` is ready to save. Adam
(decoupled weight decay) with warm-up and cosine decay, gradient clipping by norm, dropout from
the model config, early stopping on the validation loss (it waits for the warm-up to end; the
best weights are kept), and per-epoch loss, gradient-norm and metric logs on stderr.

Sequences of different lengths are trained with a mask: padding never reaches the loss, and a
classifier reads each sequence's last real step (a bidirectional one runs packed, so each
sequence is read as if alone at its own length); batches group sequences of similar length
and run to their own longest. The same data, seed and options give the same
weights; a time budget, when set, is the one thing that can make a run stop earlier.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from edgernn.checkpoint import Checkpoint
from edgernn.config import ModelConfig, TrainConfig
from edgernn.contract import Normalization
from edgernn.deps import require
from edgernn.errors import ConfigError
from edgernn.progress import Progress, log
from edgernn.tasks import Split, Task, TaskData
from edgernn.tasks.base import apply_normalization
from edgernn.tasks.forecast import Differencing, choose_difference

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
    difference: Differencing | None = None
    audio: object = None                 # AudioFeatures: trained on the front end's features

    @property
    def fitted_loss(self) -> float:
        """The training loss of the epoch kept (nan before any epoch)."""
        if not self.history:
            return float("nan")
        return self.history[max(self.best_epoch, 1) - 1].train_loss

    @property
    def reached(self) -> bool:
        return self.task.reached(self.test_metric, self.data.test)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            config=self.config, state_dict=self.model.state_dict(), task=self.task.name,
            preprocessing=self.preprocessing, postprocessing=self.postprocessing,
            labels=self.data.labels, vocabulary=self.data.vocabulary,
            tokenizer=self.data.tokenizer,
            metrics={self.task.metric: self.test_metric, **self.baseline,
                     "epochs": len(self.history), "seconds": round(self.seconds, 2)},
            training={**asdict(self.training), "data": self.data.source},
            dataset=self.data.ref,
            difference=self.difference.norm if self.difference else None, audio=self.audio)

    def summary(self) -> dict:
        return {"task": self.task.name, "model": self.config.to_dict(),
                "data": asdict(self.data.ref),
                "metric": self.task.metric, "test": self.test_metric, "baseline": self.baseline,
                "lr": self.training.lr,
                "reached_threshold": self.reached, "epochs": len(self.history),
                "best_epoch": self.best_epoch, "stop_reason": self.stop_reason,
                "seconds": round(self.seconds, 2), "history": [asdict(h) for h in self.history]}


@dataclass
class _Tensors:
    """A split as training sees it: normalised inputs and targets, and the mask of real steps."""

    x: object
    y: object
    mask: object | None
    lengths: object | None = None

    @classmethod
    def of(cls, split: Split, pre, post) -> "_Tensors":
        mask = split.mask()
        return cls(_tensor(apply_normalization(split.x, pre)),
                   _tensor(apply_normalization(split.y, post)),
                   None if mask is None else _tensor(np.ascontiguousarray(mask)),
                   None if split.lengths is None else _tensor(split.lengths))


def _tensor(a: np.ndarray):
    """A tensor sharing ``a``'s memory, or a copy's when ``a`` is read-only (a data file's
    cached arrays): PyTorch warns on every run about a read-only one."""
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _windows(length: int, bptt: int | None):
    step = bptt or length
    return [(t, min(t + step, length)) for t in range(0, length, step)]


def _batches(rng, n: int, lengths: np.ndarray | None, size: int) -> list[np.ndarray]:
    """One epoch's batches of sequence indices, in a random order. Sequences of different
    lengths are sorted by length within pools of 32 random batches before they are cut into
    batches (as torchtext's bucket iterator does), so each batch holds sequences of similar
    length and runs to its own longest, not to the data's longest (a text set's lengths run
    from a few tokens to 200). Pools keep the batches random."""
    order = rng.permutation(n)
    if lengths is not None:
        pool = size * 32
        order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                                for chunk in np.split(order, range(pool, n, pool))])
    batches = [order[i:i + size] for i in range(0, len(order), size)]
    return batches if lengths is None else [batches[i] for i in rng.permutation(len(batches))]


def _trimmed(steps: int, x, y, mask):
    """A batch cut to its first ``steps`` steps (targets too, when they have a time axis)."""
    timed = y.dim() >= 2 and y.shape[1] == x.shape[1]
    return x[:, :steps], (y[:, :steps] if timed else y), (None if mask is None else
                                                           mask[:, :steps])


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _outputs(model, x, state, per_step: bool, lengths=None):
    """Per-step outputs where the loss needs them (masked or streamed); the model's own
    forward otherwise: one label per sequence, a bidirectional one read packed at each
    sequence's own length."""
    return model.forward_steps(x, state) if per_step else model(x, state, lengths=lengths)


def predict(model, split: Split, pre: Normalization | None, chunk: int = 256) -> np.ndarray:
    """Outputs of ``model`` on ``split`` as its artifact returns them: per step (B, T, O) for a
    streamed model; one (B, O) per sequence, each read at its own length, for a model that
    reads the whole sequence both ways."""
    x = torch.from_numpy(apply_normalization(split.x, pre))
    lengths = None if split.lengths is None else torch.from_numpy(split.lengths)
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            if getattr(model, "reads_whole", False):
                part = None if lengths is None else lengths[i:i + chunk]
                outs.append(model(x[i:i + chunk], lengths=part)[0].numpy())
            else:
                outs.append(model.forward_steps(x[i:i + chunk])[0].numpy())
    return np.concatenate(outs)


def evaluate(model, task: Task, split: Split, pre, post,
             difference: Differencing | None = None, audio=None) -> float:
    """The task metric on ``split`` (levels, for a model of differences; from the front end's
    features, for a model of samples)."""
    if audio is not None:
        return task.score(predict(model, audio.split(split), audio.norm), split, post)
    if difference is None:
        return task.score(predict(model, split, pre), split, post)
    levels = difference.levels(split, predict(model, difference.split(split), difference.norm))
    return task.score(levels, split, None)


def fit(task: Task, data: TaskData | None = None, config: ModelConfig | None = None,
        training: TrainConfig | None = None, *, verbose: bool = True) -> TrainResult:
    training = training or task.training
    data = data or task.generate(seed=training.seed)
    config = task.fit_config(config or task.model, data)
    variable = any(s.lengths is not None for s in (data.train, data.val))
    if variable and config.bidirectional and config.head != "classify_last":
        raise ConfigError("per-step outputs over sequences of different lengths need a "
                          "unidirectional model (a backward layer would read the padding "
                          "first); drop --bidirectional")
    if config.bidirectional and training.bptt:
        raise ConfigError("a bidirectional model reads each sequence whole; drop --bptt")
    torch.manual_seed(training.seed)
    rng = np.random.default_rng(training.seed)
    pre, post = task.normalization(data)
    difference = None
    train_split, val_split = data.train, data.val
    net_pre, net_post = pre, post
    if training.difference and task.name != "forecast":
        raise ConfigError("--difference is for forecasting (task forecast)")
    if task.name == "forecast":
        chosen, why = choose_difference(data, training.difference)
        data.ref = replace(data.ref, trend=why)
        log(why, verbose)
        training = training.replace(difference=chosen)
    if training.difference:
        difference = Differencing.fit(data.train)
        train_split, val_split = difference.split(data.train), difference.split(data.val)
        net_pre = net_post = difference.norm
    audio = None
    if data.audio is not None:                 # samples: the network reads log-mel features
        from edgernn.tasks.audio import AudioFeatures

        audio = AudioFeatures.fit(data.train, data.audio)
        train_split, val_split = audio.split(data.train), audio.split(data.val)
        pre, net_pre = None, audio.norm
        log(f"audio: {data.audio.mel_bins} log-mel bins every {data.audio.hop_ms:g} ms "
            f"({data.audio.frame_ms:g} ms {data.audio.window} window), computed in the graph",
            verbose)
    train = _Tensors.of(train_split, net_pre, net_post)
    val = _Tensors.of(val_split, net_pre, net_post)
    whole = config.bidirectional and config.head == "classify_last"   # packed, by length
    per_step = not whole and (train.mask is not None or config.head != "classify_last")

    from edgernn.models import build

    model = build(config, seed=training.seed)
    if data.embedding_init is not None:
        if model.embedding is None or tuple(model.embedding.weight.shape) != \
                data.embedding_init.shape:
            raise ConfigError(f"pretrained embeddings of shape {data.embedding_init.shape} do "
                              f"not fit this model's token embedding")
        with torch.no_grad():
            model.embedding.weight.copy_(torch.from_numpy(data.embedding_init))
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr,
                            weight_decay=training.weight_decay)
    windows = _windows(train.x.shape[1], training.bptt)
    batches = math.ceil(len(train.x) / training.batch_size)
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
                         baseline=task.baselines(data), difference=difference, audio=audio)
    best_loss, best_state, stale, step = math.inf, None, 0, 0
    start = time.perf_counter()
    log(f"training {config.name} {config.hidden_size}x{config.num_layers} on '{task.name}' "
        f"({data.ref.describe()}; {len(data.train)} train / {len(data.val)} val, "
        f"{'TBPTT ' + str(training.bptt) if training.bptt else 'full BPTT'}"
        f"{', differences' if difference else ''})", verbose)
    for epoch in range(1, training.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        bar = Progress(batches * len(windows), f"epoch {epoch:3d}/{training.epochs}",
                       enabled=verbose)
        losses, norms = [], []
        for idx in _batches(rng, len(train_split), train_split.lengths,
                            training.batch_size):
            idx = torch.from_numpy(idx)
            xb, yb, state = train.x[idx], train.y[idx], None
            mb = None if train.mask is None else train.mask[idx]
            lb = None if train.lengths is None else train.lengths[idx]
            if lb is not None:                  # run to this batch's longest, not the data's
                xb, yb, mb = _trimmed(int(lb.max()), xb, yb, mb)
            for t0_, t1_ in (windows if lb is None else _windows(xb.shape[1], training.bptt)):
                mw = None if mb is None else mb[:, t0_:t1_]
                out, state = _outputs(model, xb[:, t0_:t1_], state, per_step, lb)
                target = yb[:, t0_:t1_] if training.bptt else yb
                if mw is not None and not bool(mw.any()):
                    state = _detach(state)
                    continue                                     # a window of padding only
                loss = task.loss(out, target, mw)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), training.clip_norm)
                opt.step()
                sched.step()
                step += 1
                state = _detach(state)
                losses.append(loss.item())
                norms.append(float(norm))
                bar.update(note=f"loss {losses[-1]:.4f}")
        model.eval()
        with torch.no_grad():
            val_out = _outputs(model, val.x, None, per_step, val.lengths)[0]
            val_loss = float(task.loss(val_out, val.y, val.mask))
        val_metric = evaluate(model, task, data.val, pre, post, difference, audio)
        entry = EpochLog(epoch, float(np.mean(losses)) if losses else float("nan"), val_loss,
                         val_metric, float(np.mean(norms)) if norms else 0.0,
                         float(np.max(norms)) if norms else 0.0, sched.get_last_lr()[0],
                         time.perf_counter() - t0)
        result.history.append(entry)
        bar.close(note=f"loss {entry.train_loss:.4f} val {val_loss:.4f} "
                       f"{task.metric} {val_metric:.4f} |g| {entry.grad_norm_mean:.2f}"
                       f"/{entry.grad_norm_max:.2f} lr {entry.lr:.2e}")
        score = val_loss if training.select == "loss" else (
            -val_metric if task.higher_is_better else val_metric)
        if score < best_loss - training.min_delta:
            best_loss, best_state, stale, result.best_epoch = score, copy.deepcopy(
                model.state_dict()), 0, epoch
        elif step > training.warmup_steps:          # no verdict while the rate is still rising
            stale += 1
        if stale >= training.patience:
            result.stop_reason = (f"early stop: no better validation "
                                  f"{'loss' if training.select == 'loss' else task.metric} for "
                                  f"{stale} epochs")
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
    result.test_metric = evaluate(model, task, data.test, pre, post, difference, audio)
    log(f"done in {result.seconds:.1f}s ({result.stop_reason}); best epoch {result.best_epoch}; "
        f"test {task.metric} {result.test_metric:.4f}", verbose)
    return result
