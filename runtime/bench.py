"""Measuring the runtime against plain ONNX Runtime on the same file, in the same run.

Every figure is a median over many calls, with the alternatives interleaved in rounds so that
a noisy machine affects them alike. The plain baselines do the same necessary work as a stream
(frame in, state fed back, output out) without edgernn: ``session.run`` with numpy feeds, and
IOBinding with double-buffered state bound once (the fastest way to call ONNX Runtime from
Python that we know).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from edgernn.runtime.model import load


def _timed(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out


class Rounds(np.ndarray):
    """Per-call nanoseconds, all rounds concatenated, remembering each round's median."""

    round_medians: np.ndarray


def interleaved(fns: dict, calls: int, rounds: int = 10) -> dict[str, np.ndarray]:
    """Per-call nanoseconds of each function, measured in alternating rounds (this machine
    has slow phases of tens of seconds: each path gets its share of every phase)."""
    per = max(1, calls // rounds)
    for fn in fns.values():
        for _ in range(min(200, calls)):
            fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(_timed(fn, per))
    out = {}
    for k, v in times.items():
        arr = np.concatenate(v).view(Rounds)
        arr.round_medians = np.array([np.median(r) for r in v])
        out[k] = arr
    return out


def median_of_medians(ns) -> float:
    """The median of the per-round medians (nanoseconds): what the benchmarks report."""
    medians = getattr(ns, "round_medians", None)
    return float(np.median(medians if medians is not None else ns))


def _summary(ns: np.ndarray) -> dict:
    return {"p50_us": median_of_medians(ns) / 1e3,
            "p99_us": float(np.percentile(np.asarray(ns), 99) / 1e3)}


class PlainORT:
    """What a careful user writes with onnxruntime alone, for the same model and file."""

    def __init__(self, model, batch: int = 1, frame: np.ndarray | None = None):
        self.model = model
        self.session = model.session
        self.batch = batch
        shape = tuple(d if isinstance(d, int) else batch for d in model.input.shape)
        if model.graph == "chunk":
            shape = (batch, 1) + shape[2:]
        rng = np.random.default_rng(0)
        if frame is not None:
            self.x = np.ascontiguousarray(np.broadcast_to(frame, shape), model.input_dtype)
        else:
            self.x = (rng.integers(0, 2, shape) if model.input_dtype == np.int64
                      else rng.standard_normal(shape)).astype(model.input_dtype)
        self.state = model.initial_state(batch)
        self.names = [model.output.name] + [s.output for s in model.states]

    def run(self):
        feeds = {self.model.input.name: self.x, **self.model.constants}
        for s in self.model.states:
            feeds[s.input] = self.state[s.name]
        outs = self.session.run(self.names, feeds)
        for i, s in enumerate(self.model.states):
            self.state[s.name] = outs[1 + i]
        return outs[0]

    def iobinding(self):
        """A callable: IOBinding, double-buffered state bound once, frame copied in, y out."""
        from edgernn.runtime.engine import Engine

        out = self.model.output.shape[1:]
        if self.model.graph != "step" or not all(isinstance(d, int) for d in out):
            return None
        engine = Engine(self.model, self.batch)
        bound = engine.bound(self.batch, shapes=(tuple(self.x.shape), (self.batch, *out)))
        if bound is None:
            return None
        x = bound.x
        frame = self.x

        def call():
            np.copyto(x, frame)
            return engine.call(bound).copy()

        return call


def step_latency(path, *, steps: int = 3000, threads: int = 1, frame=None,
                 **load_kwargs) -> dict:
    """One step per call through a stream and through plain ONNX Runtime, interleaved.
    ``frame``: a frame as the graph takes it (normalised), e.g. from the model's own data."""
    model = load(path, threads=threads, **load_kwargs)
    stream = model.stream(normalize=False)
    plain = PlainORT(model, frame=frame)
    frame = plain.x.reshape(stream.frame_shape)
    fns = {"stream.step": lambda: stream.step(frame), "plain session.run": plain.run}
    bound = plain.iobinding()
    if bound is not None:
        fns["plain iobinding"] = bound
    times = interleaved(fns, steps)
    out = {k: _summary(v) for k, v in times.items()}
    fastest = min((v["p50_us"] for k, v in out.items() if k != "stream.step"))
    out["stream_overhead_vs_fastest_plain"] = out["stream.step"]["p50_us"] / fastest - 1
    return out


def pool_throughput(path, counts=(1, 16, 64, 256), *, steps: int = 200, threads: int = 1,
                    frame=None, **load_kwargs) -> dict:
    """Per stream-step microseconds of a pool of ``n`` streams, next to one plain batched call.
    Raises StreamingError for a model that cannot be pooled."""
    model = load(path, threads=threads, **load_kwargs)
    model.pool(normalize=False)                  # refuses a model that cannot be pooled
    out = {}
    for n in counts:
        pool = model.pool(normalize=False)
        ids = [pool.open() for _ in range(n)]
        plain = PlainORT(model, batch=n, frame=frame)
        batch = plain.x.reshape((n,) + plain.x.shape[1 + (model.graph == "chunk"):])
        frames = dict(zip(ids, batch))
        times = interleaved({"pool.step": lambda: pool.step(frames),
                             "pool.step_many": lambda: pool.step_many(ids, batch),
                             "plain batched session.run": plain.run}, steps, rounds=5)
        out[n] = {k: median_of_medians(v) / 1e3 / n for k, v in times.items()}
    return out


_CHILD = """
import json, resource, sys, warnings, numpy as np
mode, path, steps, kwargs = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
warnings.simplefilter("ignore")
if mode == "stream":
    import edgernn.runtime as rt
    m = rt.load(path, threads=1, **kwargs); s = m.stream(normalize=False)
    f = np.zeros(s.frame_shape, m.input_dtype)
    for _ in range(steps): s.step(f)
else:
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    dims, consts = kwargs.get("dims") or {}, kwargs.get("constants") or {}
    def size(i, a, d):
        return d if isinstance(d, int) else dims.get(d, dims.get(f"{i.name}[{a}]", 1))
    ins = {i.name: np.zeros([size(i, a, d) for a, d in enumerate(i.shape)],
           np.int64 if "int64" in i.type else np.float32) for i in sess.get_inputs()}
    ins.update({k: np.asarray(v, ins[k].dtype) for k, v in consts.items()})
    for _ in range(steps): sess.run(None, ins)
try:   # VmHWM starts afresh at exec; ru_maxrss would include the parent's image before it
    print([int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(path, mode: str, steps: int = 500, **load_kwargs) -> float:
    """Peak resident memory of a fresh process that streams ``steps`` steps (``mode``: stream
    through edgernn, or plain onnxruntime)."""
    kwargs = json.dumps({k: v for k, v in load_kwargs.items() if v is not None})
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, os.fspath(path), str(steps),
                          kwargs], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def import_seconds() -> float:
    code = ("import time; t = time.perf_counter(); import edgernn.runtime; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)]
    return float(np.median(runs))


def torch_step_latency(checkpoint, *, steps: int = 1000) -> dict | None:
    """PyTorch eager, one step per call with state carried (host side; None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    from edgernn.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    cfg = model.config
    x = (torch.zeros(1, 1, dtype=torch.int64) if cfg.tokens
         else torch.randn(1, 1, cfg.input_size))
    if ckpt.audio is not None:                   # samples in, through the same front end
        from edgernn.exporters.from_torch.audio_front import AudioFront

        model = AudioFront(model, ckpt.audio).eval()
        x = 0.1 * torch.randn(1, 1, ckpt.audio.fbank.hop)
    state = [None]

    def step():
        with torch.no_grad():
            y, state[0] = model.forward_steps(x, state[0])

    return _summary(interleaved({"torch": step}, steps, rounds=2)["torch"])


def to_json(doc) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=float)


__all__ = ["PlainORT", "import_seconds", "interleaved", "median_of_medians", "peak_rss_mb",
           "pool_throughput", "step_latency", "torch_step_latency"]
