"""int8 error against PyTorch over fed-back steps, edgernn next to its peers (issue 20, item 1).

    python benchmarks/int8_error.py [--seeds 20] [--steps 50] [--json]

For the keyword model (LSTM 40->128x2->10, trained on its defaults) and its GRU and vanilla RNN
variants: max |y - torch| over ``--steps`` steps with the state fed back, on ``--seeds`` streams
of the task's frames and ``--seeds`` streams of random frames (standard normal after the
network's normalisation); the max over seeds and its median. Paths: edgernn's int8 (compact and
lean step graphs, its default quantization), ONNX Runtime's own int8 LSTM kernel
(``quantize_dynamic`` on the fused step graph: ``DynamicQuantizeLSTM``; its default and its most
accurate setting, per-channel weights with reduce_range), LiteRT's
dynamic-range int8 (ai-edge-quantizer's file of litert-torch's, benchmarks/litert_ref.py), and
each one's fp32 form as a check of the
harness (errors of 1e-6). runtime_bench.py imports :func:`study` for its section 5.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CELLS = ("lstm", "gru", "rnn")


def trained(cell: str, folder: Path):
    """The keyword model with ``cell``, trained on the task's defaults (cached in ``folder``)."""
    from edgernn.checkpoint import load_checkpoint, save_checkpoint
    from edgernn.tasks import get_task
    from edgernn.training import fit

    path = folder / f"keyword-{cell}.pt"
    if not path.exists():
        task = get_task("classify")
        result = fit(task, config=task.model.replace(cell=cell), verbose=False)
        save_checkpoint(path, result.checkpoint())
    return path, load_checkpoint(path)


ORT_SETTINGS = {"default": {}, "per channel, reduce range": {"per_channel": True,
                                                            "reduce_range": True}}


def ort_int8_lstm(net, folder: Path, **settings) -> Path:
    """ONNX Runtime's own int8 LSTM: quantize_dynamic on the fused step graph. Its default
    saturates u8 x s8 pairs on AVX2 without VNNI; per-channel weights with reduce_range (7-bit
    weights) is its most accurate setting here."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgernn.exporters import export

    fused = export(net, folder / "fused.onnx", ops="fused").path
    out = folder / f"ort-int8-{len(settings)}.onnx"
    quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8, **settings)
    return out


def paths(cell: str, folder: Path) -> tuple[object, dict]:
    """The trained net and every path's streaming ``step`` function factory, by name."""
    import litert_ref

    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.runtime import load

    folder = folder / cell
    folder.mkdir(parents=True, exist_ok=True)
    ckpt_path, ckpt = trained(cell, folder.parent)
    net = ckpt.build_model().eval()
    made = {}
    for ops in ("compact", "lean"):
        fp32 = export(ckpt_path, folder / f"{ops}.onnx", ops=ops).path
        q = folder / f"{ops}.int8.onnx"
        quantize(fp32, q, gate=Gate(horizon=500), force=True, measure_latency=False)
        made[f"edgernn {ops} fp32"] = load(fp32, threads=1).stream
        made[f"edgernn {ops} int8"] = load(q, threads=1).stream
    if cell == "lstm":
        for name, settings in ORT_SETTINGS.items():
            made[f"onnxruntime int8 LSTM, {name}"] = load(
                ort_int8_lstm(ckpt_path, folder, **settings), threads=1).stream
    for (kind, _), path in litert_ref.convert(net, folder / "litert").items():
        made[f"litert {kind}"] = (lambda p=path: litert_ref.Stream(p))
    return net, made


def fed_back_error(net, make_stream, frames_by_seed, pre) -> np.ndarray:
    """Per seed: max |y - torch| over the seed's frames, the state fed back step by step."""
    import torch

    out = []
    for frames in frames_by_seed:
        with torch.no_grad():
            x = torch.from_numpy(pre.apply(frames) if pre else frames)[None]
            want = net.forward_steps(x)[0][0].numpy()
        stream = make_stream()
        got = np.stack([stream.step(pre.apply(f) if pre and _raw(stream) else f)
                        for f in frames])
        out.append(float(np.abs(got - want).max()))
    return np.array(out)


def _raw(stream) -> bool:
    """LiteRT's reference takes frames as the network does (normalised)."""
    return not hasattr(stream, "model")


def random_frames(pre, size: int, steps: int, seed: int) -> np.ndarray:
    """Frames the network has not seen the like of: standard normal where it reads them
    (after its normalisation), so every feature spans its usual range, with no task structure."""
    x = np.random.default_rng(1000 + seed).normal(size=(steps, size)).astype(np.float32)
    if pre is None:
        return x
    mean, std = pre.arrays()
    return (x * std + mean).astype(np.float32)


def study(seeds: int = 20, steps: int = 50, folder: Path | None = None) -> dict:
    """Per cell: the logits' std, and for the task's frames and for random frames, each path's
    max |y - torch| over ``steps`` fed-back steps: the max over ``seeds`` streams and its
    median."""
    import torch

    from edgernn.tasks import get_task

    folder = folder or Path(tempfile.mkdtemp(prefix="edgernn-int8err-"))
    task = get_task("classify")
    doc = {}
    for cell in CELLS:
        print(f"int8 error: {cell}", file=sys.stderr)
        net, made = paths(cell, folder)
        pre = net_pre(folder / f"keyword-{cell}.pt")
        kinds = {"task": [task.stream(steps, seed) for seed in range(seeds)],
                 "random": [random_frames(pre, net.config.input_size, steps, seed)
                            for seed in range(seeds)]}
        with torch.no_grad():
            x = np.stack([pre.apply(f) if pre else f for f in kinds["task"]])
            std = float(np.std(net.forward_steps(torch.from_numpy(x))[0].numpy()))
        doc[cell] = {"logits_std": std}
        for kind, frames in kinds.items():
            errors = {name: fed_back_error(net, make, frames, pre) for name, make in made.items()}
            doc[cell][kind] = {k: {"max": float(v.max()), "median": float(np.median(v))}
                               for k, v in errors.items()}
    return doc


def net_pre(ckpt_path: Path):
    """What the torch network takes: frames normalised (the exported graphs fold it in)."""
    from edgernn.checkpoint import load_checkpoint

    return load_checkpoint(ckpt_path).preprocessing


def show(doc: dict, seeds: int, steps: int) -> None:
    print(f"max |y - torch| over {steps} fed-back steps, {seeds} streams: max over streams "
          f"(median), on the task's frames | on random frames")
    for cell, rows in doc.items():
        print(f"  {cell} (logits std {rows['logits_std']:.2f})")
        for name, task in rows["task"].items():
            rand = rows["random"][name]
            print(f"    {name:44s} {task['max']:.4f} ({task['median']:.4f}) | "
                  f"{rand['max']:.4f} ({rand['median']:.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--folder", type=Path, help="keep (and reuse) the trained models here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    doc = study(args.seeds, args.steps, args.folder)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        show(doc, args.seeds, args.steps)


if __name__ == "__main__":
    main()
