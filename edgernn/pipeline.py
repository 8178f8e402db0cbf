"""The pipeline as functions a program calls: train from options, and the whole demo (train,
export, validate against PyTorch, stream through the runtime, quantize behind the gate).
``edgernn train`` and ``edgernn demo`` are thin wrappers around these.

Host side: torch loads only once the data is known good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgernn.choices import DEFAULT_QUANTIZE_MODE, quantized_path
from edgernn.progress import log

# train's model and training overrides: option name -> the config field it sets
MODEL_OVERRIDES = {"cell": "cell", "nonlinearity": "nonlinearity", "hidden": "hidden_size",
                   "layers": "num_layers", "bidirectional": "bidirectional",
                   "dropout": "dropout", "head": "head"}
TRAINING_OVERRIDES = ("epochs", "batch_size", "lr", "bptt", "patience", "min_delta",
                      "warmup_steps", "time_budget", "difference")


def train(task_name: str = "keyword", data=None, *, seed: int = 0, size: float = 1.0,
          verbose: bool = True, **overrides):
    """Train ``task_name`` on ``data`` (a file) or its built-in data set; the defaults are sized
    to the data, then ``overrides`` (``cell``, ``hidden``, ``layers``, ``epochs``, ... as the
    CLI's options; None leaves the default) win. Returns the
    :class:`~edgernn.training.TrainResult`."""
    from edgernn.errors import ConfigError
    from edgernn.tasks import get_task

    unknown = set(overrides) - set(MODEL_OVERRIDES) - set(TRAINING_OVERRIDES)
    if unknown:
        raise ConfigError(f"unknown training option(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(list(MODEL_OVERRIDES) + list(TRAINING_OVERRIDES))}")
    task = get_task(task_name)
    dataset = task.load(data) if data else task.generate(seed=seed, size=size)
    model, training, why = task.sized(dataset)
    if why and verbose:
        log(why)
    config = model.replace(**{field: overrides[k] for k, field in MODEL_OVERRIDES.items()
                              if overrides.get(k) is not None})
    given = {k: overrides.get(k) for k in TRAINING_OVERRIDES}
    given["time_budget"] = given["time_budget"] or None          # 0 means off
    given["seed"] = seed
    training = training.replace(**{k: v for k, v in given.items() if v is not None})
    from edgernn.training import fit          # torch loads only once the data is known good

    return fit(task, dataset, config, training, verbose=verbose)


@dataclass
class DemoResult:
    train: object                 # TrainResult
    checkpoint: Path
    export: object                # ExportResult
    validate: object              # ValidationReport
    streaming: dict | None        # engine -> p50/p99 microseconds (None: not streamable)
    quantize: object              # QuantizeReport
    mode: str

    def to_dict(self) -> dict:
        return {"train": self.train.summary(), "checkpoint": str(self.checkpoint),
                "export": self.export.to_dict(), "validate": self.validate.to_dict(),
                "streaming": self.streaming, "quantize": self.quantize.to_dict()}


def demo(out: str | Path, *, horizon: int = 10_000, profile: str | None = None,
         **train_options) -> DemoResult:
    """The whole pipeline into folder ``out``: model.pt, model.onnx, its quantized file and
    drift.png. ``profile`` picks graph, ops, precision and providers; ``train_options`` go to
    :func:`train`."""
    from edgernn.checkpoint import save_checkpoint
    from edgernn.devices import get_profile
    from edgernn.exporters import export, validate
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.exporters.checks.validate import plot, record

    out = Path(out)
    prof = get_profile(profile) if profile else None
    out.mkdir(parents=True, exist_ok=True)
    log(f"[1/5] train '{train_options.get('task_name', 'keyword')}'")
    result = train(**train_options)
    ckpt_path = save_checkpoint(out / "model.pt", result.checkpoint())
    graph, ops = form_for(profile, None, None)
    if not result.config.streamable:
        graph, ops = "sequence", "fused"
    log(f"[2/5] export a {graph} graph ({ops} ops)")
    exported = export(ckpt_path, out / "model.onnx", graph=graph, ops=ops)
    log(f"[3/5] validate against PyTorch ({horizon} streamed steps)")
    report = validate(ckpt_path, [exported.path], horizon=horizon)
    record(report)
    plot(report, out / "drift.png")
    streaming = None
    if graph != "sequence":
        log("[4/5] stream through edgernn.runtime, next to PyTorch eager")
        streaming = stream_latency(exported.path, ckpt_path, result, profile)
    mode = (prof.quantize_mode() if prof else None) or DEFAULT_QUANTIZE_MODE
    log(f"[5/5] quantize ({mode}) behind the quality gate")
    quant = quantize(exported.path, quantized_path(exported.path, mode), mode=mode,
                     checkpoint=ckpt_path, gate=Gate(horizon=max(horizon, 100)))
    return DemoResult(result, ckpt_path, exported, report, streaming, quant, mode)


def form_for(profile, graph, ops) -> tuple[str, str | None]:
    """Graph kind and ops: explicit choices win, then the profile's preference, then export's
    own default."""
    from edgernn.choices import DEFAULT_GRAPH

    if profile:
        from edgernn.devices import get_profile

        p = get_profile(profile)
        return graph or p.graph, ops or (p.ops if (graph or p.graph) == "step" else "fused")
    return graph or DEFAULT_GRAPH, ops


def stream_latency(onnx_path, ckpt_path, result, profile=None, steps: int = 2000) -> dict:
    """Stream the task's own frames through the runtime; time it next to PyTorch eager."""
    import numpy as np

    from edgernn.runtime import bench, load

    stream = load(onnx_path, profile=profile, threads=1).stream()
    frames = result.task.stream(steps, seed=7)
    it = iter(range(10**9))

    def step():
        stream.step(frames[next(it) % steps])

    name = f"edgernn.runtime stream.step ({', '.join(stream.model.providers)})"
    figures = {name: bench.interleaved({"s": step}, steps, rounds=2)["s"]}
    out = {k: {"p50_us": bench.median_of_medians(v) / 1e3,
               "p99_us": float(np.percentile(v, 99) / 1e3)}
           for k, v in figures.items()}
    torch_fig = bench.torch_step_latency(ckpt_path, steps=steps // 2)
    if torch_fig:
        out["pytorch eager"] = torch_fig
    return out
